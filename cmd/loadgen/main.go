// Command loadgen drives a running wagate through its public API and
// measures it: it creates an EVOLUTION instance whose webhook posts to its
// own receiver, credentials pointing at a fake model server and a bot that
// answers everything at once, sends messages across conversations, and
// times every message from its inbound POST to the matching send.message
// webhook. With -bare it also runs a minimal pipeline with the same hops on
// the same machine and prints the ratio: the machine's own limit is the
// anchor. With -db it starts the gateway itself, on a new SQLite database or
// a throwaway PostgreSQL one, and reports the processor time per message of
// the gateway and of the PostgreSQL server processes serving it, so that the
// two backends are compared on the same workload. See BENCHMARKS.md.
//
// It talks only to loopback addresses, and every run is bounded in messages
// and time.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wagate/wagate/fakeai"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	gateway       string // base URL of the gateway; "none" runs only -bare
	apiKey        string
	metricsToken  string
	aiURL         string // fake model server; empty starts one in-process
	aiLatency     time.Duration
	messages      int
	conversations int
	rate          float64 // messages per second; 0 means as fast as possible
	senders       int
	modelCalls    int // -bare: model calls in flight at once
	bare          bool
	duration      time.Duration // hard limit of the whole run
	drain         time.Duration // how long to wait for replies after the last send
	settle        time.Duration // how long goroutines may take to return to the baseline
	keep          bool
	idle          int    // create this many idle instances instead of sending
	instances     int    // instances the load is spread over
	ready         bool   // wait for /readyz and report the time to it
	db            string // "sqlite" or a PostgreSQL URL: start the gateway on it
	wagate        string // -db: the gateway binary
	listen        string // -db: the address the started gateway listens on

	launched *launched // the gateway started for -db, if any
}

func run(ctx context.Context, args []string, out io.Writer) error {
	start := time.Now()
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&o.gateway, "gateway", "http://127.0.0.1:8080", `gateway base URL (loopback only), or the URLs of several replicas separated by commas (messages are posted to each in turn; setup and /metrics use the first); "none" with -bare runs only the reference pipeline`)
	fs.IntVar(&o.instances, "instances", 1, "EVOLUTION instances the conversations are spread over (each conversation stays on one)")
	fs.StringVar(&o.apiKey, "apikey", "", "the gateway's global API key (required)")
	fs.StringVar(&o.metricsToken, "metrics-token", "", "bearer token for /metrics when WAGATE_METRICS_TOKEN is set (default: the API key)")
	fs.StringVar(&o.aiURL, "ai", "", "base URL of a running fakeai (loopback only); empty starts one in-process")
	fs.DurationVar(&o.aiLatency, "ai-latency", 0, "model latency of the in-process fakeai")
	fs.IntVar(&o.messages, "messages", 2000, "messages to send (at most 1,000,000)")
	fs.IntVar(&o.conversations, "conversations", 100, "conversations the messages are spread over, round robin")
	fs.Float64Var(&o.rate, "rate", 0, "messages per second; 0 sends as fast as the senders can")
	fs.IntVar(&o.senders, "senders", 32, "concurrent inbound POSTs at most")
	fs.IntVar(&o.modelCalls, "bare-model-calls", 256, "-bare: model calls in flight at once (the gateway's WAGATE_MAX_CONCURRENT_MODEL_CALLS, per credential: loadgen uses one)")
	fs.BoolVar(&o.bare, "bare", false, "also run the reference pipeline (HTTP in, one model call, HTTP webhook out; no storage, no engine) and print the ratio")
	fs.DurationVar(&o.duration, "duration", 5*time.Minute, "hard limit of the whole run")
	fs.DurationVar(&o.drain, "drain", 60*time.Second, "how long to wait for replies after the last message is sent")
	fs.DurationVar(&o.settle, "settle", 15*time.Second, "how long the gateway's goroutines may take to return to the baseline after the run")
	fs.BoolVar(&o.keep, "keep", false, "keep the load instance (deleted by default)")
	fs.IntVar(&o.idle, "idle-instances", 0, "create this many idle EVOLUTION instances (no load), then report memory")
	fs.BoolVar(&o.ready, "ready", false, "poll /readyz until it answers 200 and report the time since -since, and memory")
	fs.StringVar(&o.db, "db", "", `start the gateway (see -wagate) on "sqlite" (a new database in a temporary directory) or on a throwaway database created in the PostgreSQL server of this postgres:// URL (loopback only), measure its processor time, and stop it and remove the database after the run; -gateway is then http://<-listen>`)
	fs.StringVar(&o.wagate, "wagate", "", "-db: the wagate binary (default: wagate next to loadgen, else on PATH)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:18081", "-db: the address the started gateway listens on")
	since := fs.Int64("since", 0, "-ready: when the gateway was started, in Unix nanoseconds (date +%s%N); 0 means when loadgen started")
	fs.SetOutput(out)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.db != "" {
		if o.apiKey == "" {
			key := make([]byte, 12)
			rand.Read(key)
			o.apiKey = "loadgen-" + hex.EncodeToString(key)
		}
		o.gateway = "http://" + o.listen
	}
	if err := o.validate(); err != nil {
		return err
	}
	if *since > 0 {
		start = time.Unix(0, *since)
	}
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if o.db != "" {
		bin, err := gatewayBinary(o.wagate)
		if err != nil {
			return err
		}
		l, err := launch(ctx, bin, o.db, o.listen, o.apiKey, log)
		if err != nil {
			return err
		}
		defer l.stop(log)
		o.launched = l
		fmt.Fprintf(out, "gateway: %s on %s, listening on %s\n", bin, dbText(o.db), o.listen)
	}

	var gw *gatewayClient
	if o.gateway != "none" {
		gw = newGatewayClient(o.gateway, o.apiKey, o.metricsToken, o.senders)
	}
	switch {
	case o.ready:
		return waitReady(ctx, gw, start, out)
	case o.idle > 0:
		return createIdle(ctx, gw, o.idle, out)
	}

	aiURL := o.aiURL
	if aiURL == "" {
		ai := fakeai.New(fakeai.Options{Latency: o.aiLatency, MaxRecorded: -1})
		base, err := ai.Start("127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("fakeai: %w", err)
		}
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			ai.Shutdown(sctx)
		}()
		aiURL = base
	}
	w := workload{messages: o.messages, conversations: o.conversations, rate: o.rate, senders: o.senders, drain: o.drain}
	fmt.Fprintf(out, "workload: %d messages over %d conversations, %s, %d senders, model latency %s\n",
		o.messages, o.conversations, rateText(o.rate), o.senders, latencyText(o.aiURL, o.aiLatency))

	// With -bare the reference runs before and after the gateway, and the
	// ratio is to their mean: on a machine shared with other work the load
	// changes between runs, and bracketing the gateway run evens it out.
	var gwRes *result
	var bares []*result
	runRef := func(name string) error {
		res, err := runBare(ctx, aiURL, w, o.modelCalls, log)
		if err != nil {
			return err
		}
		bares = append(bares, res)
		res.print(out, name)
		return nil
	}
	if o.bare {
		if err := runRef("bare (before)"); err != nil {
			return err
		}
	}
	if gw != nil {
		res, err := runGateway(ctx, gw, aiURL, w, o, log)
		if err != nil {
			return err
		}
		gwRes = res
		res.print(out, "gateway")
	}
	if o.bare && gw != nil {
		if err := runRef("bare (after)"); err != nil {
			return err
		}
	}
	var bareTP float64
	for _, r := range bares {
		bareTP += r.throughput() / float64(len(bares))
	}
	if gwRes != nil && bareTP > 0 {
		fmt.Fprintf(out, "ratio gateway/bare throughput: %.2f (gateway %.0f/s, bare mean %.0f/s)\n",
			gwRes.throughput()/bareTP, gwRes.throughput(), bareTP)
	}
	clean := gwRes == nil || gwRes.clean()
	for _, r := range bares {
		clean = clean && r.clean()
	}
	if !clean {
		return errors.New("messages were lost, duplicated or refused")
	}
	return nil
}

func (o *options) validate() error {
	switch {
	case o.gateway == "none" && !o.bare:
		return errors.New("-gateway none needs -bare")
	case o.gateway != "none" && o.apiKey == "":
		return errors.New("-apikey is required")
	case o.messages < 1 || o.messages > 1_000_000:
		return errors.New("-messages must be from 1 to 1000000")
	case o.conversations < 1 || o.conversations > o.messages:
		return errors.New("-conversations must be from 1 to -messages")
	case o.senders < 1 || o.senders > 4096:
		return errors.New("-senders must be from 1 to 4096")
	case o.rate < 0:
		return errors.New("-rate must not be negative")
	case o.instances < 1 || o.instances > 10_000:
		return errors.New("-instances must be from 1 to 10000")
	case o.idle < 0 || o.idle > 100_000:
		return errors.New("-idle-instances must be from 0 to 100000")
	case o.duration <= 0 || o.duration > time.Hour:
		return errors.New("-duration must be positive and at most 1h")
	}
	if o.db != "" {
		if err := checkDB(o.db); err != nil {
			return fmt.Errorf("-db: %w", err)
		}
		if o.ready || o.idle > 0 {
			return errors.New("-db runs the load workload only, not -ready or -idle-instances")
		}
	}
	if o.gateway != "none" {
		for _, g := range strings.Split(o.gateway, ",") {
			if err := loopbackOnly(g); err != nil {
				return fmt.Errorf("-gateway: %w", err)
			}
		}
	}
	if o.aiURL != "" {
		if err := loopbackOnly(o.aiURL); err != nil {
			return fmt.Errorf("-ai: %w", err)
		}
	}
	return nil
}

// loopbackOnly refuses URLs that do not name this machine: a load test
// never sends traffic anywhere else.
func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return errors.New("must be an http URL")
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s is not a loopback address (127.0.0.0/8, ::1, localhost)", host)
}

// dbText names the database of -db without its password.
func dbText(db string) string {
	if u, err := url.Parse(db); err == nil && u.User != nil {
		return u.Redacted()
	}
	return db
}

func rateText(rate float64) string {
	if rate == 0 {
		return "as fast as possible"
	}
	return fmt.Sprintf("%.0f messages/s", rate)
}

func latencyText(aiURL string, d time.Duration) string {
	if aiURL != "" {
		return "of " + aiURL
	}
	return d.String()
}
