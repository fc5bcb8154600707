package whatsapp

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waE2E"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// Client is the part of *whatsmeow.Client the channel uses, narrowed so
// tests can drive the channel with a fake that emits real whatsmeow events
// and never opens a socket.
type Client interface {
	// Connect opens the socket: it logs in a paired device, or starts
	// pairing (QR codes arrive on the QR channel) for a new one.
	Connect() error
	// Disconnect closes the socket without emitting events; whatsmeow
	// does not reconnect after it.
	Disconnect()
	// Logout unlinks the device on WhatsApp's side, disconnects and
	// deletes the device from the store.
	Logout(ctx context.Context) error
	// DeleteDevice deletes the device from the local store only, for a
	// device that cannot reach WhatsApp to log out.
	DeleteDevice(ctx context.Context) error
	IsConnected() bool
	IsLoggedIn() bool
	// OwnJID is the paired device's JID (user:device@s.whatsapp.net),
	// OwnLID its hidden-user JID; both empty until paired.
	OwnJID() types.JID
	OwnLID() types.JID
	// PushName is the account's profile name, once WhatsApp has sent it.
	PushName() string

	GetQRChannel(ctx context.Context) (<-chan whatsmeow.QRChannelItem, error)
	// PairPhone asks for the 8-character code to type on the phone
	// (Linked devices → Link with phone number). The client must be
	// connected and showing QR codes.
	PairPhone(ctx context.Context, phone string) (string, error)

	AddEventHandler(handler whatsmeow.EventHandler) uint32

	GenerateMessageID() types.MessageID
	// SendMessage sends msg under id and waits for the server's ack.
	SendMessage(ctx context.Context, to types.JID, msg *waE2E.Message, id types.MessageID) (whatsmeow.SendResponse, error)
	SendChatPresence(ctx context.Context, chat types.JID, state types.ChatPresence, media types.ChatPresenceMedia) error
	SendPresence(ctx context.Context, state types.Presence) error
	MarkRead(ctx context.Context, ids []types.MessageID, at time.Time, chat, sender types.JID) error
	RejectCall(ctx context.Context, from types.JID, callID string) error
	// DownloadToFile downloads and decrypts an attachment into file.
	DownloadToFile(ctx context.Context, msg whatsmeow.DownloadableMessage, file whatsmeow.File) error
	// Upload encrypts and uploads an attachment to WhatsApp's media
	// servers, returning what the message that carries it needs.
	Upload(ctx context.Context, data []byte, kind whatsmeow.MediaType) (whatsmeow.UploadResponse, error)
	// GetGroupInfo returns a group's metadata (its participants, for
	// mentioning everyone).
	GetGroupInfo(ctx context.Context, jid types.JID) (*types.GroupInfo, error)
	IsOnWhatsApp(ctx context.Context, phones []string) ([]types.IsOnWhatsAppResponse, error)
	GetProfilePictureInfo(ctx context.Context, jid types.JID, params *whatsmeow.GetProfilePictureParams) (*types.ProfilePictureInfo, error)
	UpdateBlocklist(ctx context.Context, jid types.JID, action events.BlocklistChangeAction) (*types.Blocklist, error)
	// SendAppState sends an app state patch (archive, mark unread, …) to
	// the account's other devices.
	SendAppState(ctx context.Context, patch appstate.PatchInfo) error
	// PNForLID returns the phone-number JID whatsmeow's LID store knows
	// for a hidden-user JID, or an empty JID.
	PNForLID(ctx context.Context, lid types.JID) (types.JID, error)
	// LIDForPN returns the hidden-user JID whatsmeow's LID store knows for
	// a phone-number JID, or an empty JID.
	LIDForPN(ctx context.Context, pn types.JID) (types.JID, error)
}

// ClientFactory makes the client of one device: a device from the shared
// store, or a new one (ID nil) that is about to pair.
type ClientFactory func(dev *wastore.Device, log waLog.Logger) Client

// NewWhatsmeowClient is the real ClientFactory.
func NewWhatsmeowClient(dev *wastore.Device, log waLog.Logger) Client {
	c := whatsmeow.NewClient(dev, log)
	// A gateway that starts while the network is down keeps trying in the
	// background instead of leaving a paired instance closed; this is
	// whatsmeow's own loop, so wagate never runs a competing one. A new
	// device about to pair fails at once instead: the operator calling
	// connect is waiting for a QR code and should hear why none comes.
	c.InitialAutoReconnect = dev.ID != nil
	return &waClient{c}
}

// waClient adapts *whatsmeow.Client to Client.
type waClient struct{ *whatsmeow.Client }

func (c *waClient) DeleteDevice(ctx context.Context) error {
	if c.Store.ID == nil {
		return nil // already gone: Logout or a LoggedOut event deleted it
	}
	return c.Store.Delete(ctx)
}

func (c *waClient) OwnJID() types.JID { return c.Store.GetJID() }

func (c *waClient) OwnLID() types.JID { return c.Store.GetLID() }

func (c *waClient) PushName() string { return c.Store.PushName }

func (c *waClient) PairPhone(ctx context.Context, phone string) (string, error) {
	// WhatsApp only accepts a display name of the form "Browser (OS)" with
	// a common browser and OS.
	return c.Client.PairPhone(ctx, phone, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
}

func (c *waClient) SendMessage(ctx context.Context, to types.JID, msg *waE2E.Message, id types.MessageID) (whatsmeow.SendResponse, error) {
	return c.Client.SendMessage(ctx, to, msg, whatsmeow.SendRequestExtra{ID: id})
}

func (c *waClient) MarkRead(ctx context.Context, ids []types.MessageID, at time.Time, chat, sender types.JID) error {
	return c.Client.MarkRead(ctx, ids, at, chat, sender)
}

func (c *waClient) PNForLID(ctx context.Context, lid types.JID) (types.JID, error) {
	return c.Store.LIDs.GetPNForLID(ctx, lid)
}

func (c *waClient) LIDForPN(ctx context.Context, pn types.JID) (types.JID, error) {
	return c.Store.LIDs.GetLIDForPN(ctx, pn)
}

// slogLogger adapts slog to whatsmeow's logger. whatsmeow logs at Info
// what is routine for a gateway with many numbers (every connect, every
// prekey upload), so its Info becomes Debug here.
type slogLogger struct{ log *slog.Logger }

func newWALogger(log *slog.Logger) waLog.Logger { return slogLogger{log} }

func (l slogLogger) Errorf(msg string, args ...any) { l.log.Error(fmt.Sprintf(msg, args...)) }
func (l slogLogger) Warnf(msg string, args ...any)  { l.log.Warn(fmt.Sprintf(msg, args...)) }
func (l slogLogger) Infof(msg string, args ...any)  { l.log.Debug(fmt.Sprintf(msg, args...)) }
func (l slogLogger) Debugf(msg string, args ...any) {
	// Formatting whatsmeow's very chatty debug output costs even when it
	// is dropped, so check first.
	if l.log.Enabled(context.Background(), slog.LevelDebug-4) {
		l.log.Log(context.Background(), slog.LevelDebug-4, fmt.Sprintf(msg, args...))
	}
}
func (l slogLogger) Sub(module string) waLog.Logger {
	return slogLogger{l.log.With("module", module)}
}
