package wagate

// Version is the gateway's version, set at build time with
// -ldflags "-X github.com/wagate/wagate.Version=…".
var Version = "dev"
