// Package config loads wagate's settings once, from WAGATE_* environment
// variables and command-line flags (flags win), validates them and fills in
// defaults. No other package reads the environment.
package config

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is the complete runtime configuration of the gateway.
type Config struct {
	Listen          string        // address the HTTP API listens on
	DataDir         string        // directory for the SQLite database and generated key files
	DatabaseURL     string        // database to use; empty means a SQLite file in DataDir
	APIKey          string        // global API key; empty means generated into DataDir
	SecretKey       []byte        // 32-byte master key for secrets at rest; nil means generated into DataDir
	ServerURL       string        // public base URL, reported as server_url in webhook envelopes
	MaxBodyBytes    int64         // request bodies above this size are rejected with 413
	MaxInboundText  int           // characters of an inbound message's text kept; the rest is cut
	ShutdownTimeout time.Duration // how long in-flight requests may take to finish on shutdown
	LogLevel        slog.Level
	LogFormat       string // "text" or "json"
	QRTerminal      bool   // print WhatsApp pairing QR codes on standard output
	// AllowPrivateFetch lets URLs the gateway fetches (media, knowledge
	// pages) reach private and loopback addresses: tests and demos only.
	AllowPrivateFetch bool
	MetricsToken      string // bearer token GET /metrics requires; empty leaves it open

	// PostgreSQL connection pool and statement timeout; SQLite ignores them.
	DBMaxOpenConns     int
	DBMaxIdleConns     int
	DBConnMaxLifetime  time.Duration
	DBStatementTimeout time.Duration // 0 means none

	OpenAIBaseURL string // base URL of credentials that name none

	MaxConcurrentModelCalls int           // model calls in flight per credential
	HistoryTokens           int           // token budget of the history sent with each model call
	ModelTimeout            time.Duration // per model call
	TranscribeModel         string
	// Fixed tunings, not settable from outside; tests shorten them.
	ModelRetryBase   time.Duration // first delay between retries of a failed model call
	SessionSweepEach time.Duration // how often idle sessions are expired

	MessageRetentionDays int           // messages and closed sessions older than this are deleted; 0 keeps them
	RetentionSweepEach   time.Duration // fixed tuning: how often the retention job runs

	// Knowledge bases: the largest uploaded file, the limits of one
	// organization's knowledge bases, and the sources ingested at once.
	KnowledgeMaxFileBytes int64
	KnowledgeMaxSources   int
	KnowledgeMaxBytes     int64
	KnowledgeMaxChunks    int
	KnowledgeWorkers      int
	KnowledgeLease        time.Duration // fixed tuning: how long an ingestion job's claim holds unrenewed

	WebhookTimeout    time.Duration // per delivery attempt
	WebhookRetryBase  time.Duration // first retry delay; doubles per attempt
	WebhookMaxBackoff time.Duration // longest delay between two attempts
	WebhookMaxAge     time.Duration // deliveries older than this are given up

	// Replicas on one PostgreSQL database; SQLite ignores them.
	LeaseDuration       time.Duration // how long an instance's lease holds unrenewed
	ReplicaMaxInstances int           // instances one replica owns at most; 0 means no limit
	ReplicaName         string        // shown as an instance's owner; empty means host:port
	ReplicaAddress      string        // base URL the other replicas reach this one's API at
}

// option describes one setting: its environment variable, flag, default and
// meaning. The table below is the single source for flags, env and docs.
type option struct {
	env, flag, def, usage string
	set                   func(c *Config, v string) error
}

var options = []option{
	{"WAGATE_LISTEN", "listen", ":8080", "address the HTTP API listens on",
		func(c *Config, v string) error {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("must be host:port: %w", err)
			}
			c.Listen = v
			return nil
		}},
	{"WAGATE_DATA_DIR", "data-dir", "./data", "directory for the SQLite database and generated key files",
		func(c *Config, v string) error {
			if v == "" {
				return errors.New("must not be empty")
			}
			c.DataDir = v
			return nil
		}},
	{"WAGATE_DATABASE_URL", "database-url", "", "database URL: postgres://user:pass@host:5432/db for PostgreSQL; empty means SQLite in the data dir (file:<data-dir>/wagate.db)",
		func(c *Config, v string) error { c.DatabaseURL = v; return nil }},
	// The pool defaults leave room for a few replicas within PostgreSQL's
	// default max_connections (100).
	{"WAGATE_DB_MAX_OPEN_CONNS", "db-max-open-conns", "20", "PostgreSQL: most connections open at once (SQLite keeps its own small pool)",
		func(c *Config, v string) error { return positiveInt(v, &c.DBMaxOpenConns) }},
	// Every connection stays open by default: one closed after a burst is
	// opened again at the next, and a new PostgreSQL backend costs
	// milliseconds of the server's processor before its first statement.
	{"WAGATE_DB_MAX_IDLE_CONNS", "db-max-idle-conns", "0", "PostgreSQL: most idle connections kept open for reuse; 0 keeps them all (up to the open limit)",
		func(c *Config, v string) error { return wholeNumber(v, &c.DBMaxIdleConns, "to keep every connection") }},
	{"WAGATE_DB_CONN_MAX_LIFETIME", "db-conn-max-lifetime", "30m", "PostgreSQL: connections are replaced after this long, so a failover or pooler change reaches them all",
		func(c *Config, v string) error { return positiveDuration(v, &c.DBConnMaxLifetime) }},
	{"WAGATE_DB_STATEMENT_TIMEOUT", "db-statement-timeout", "30s", "PostgreSQL: statement_timeout of every query (not migrations); 0 means none",
		func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return errors.New(`must be a duration such as "30s", or 0 for none`)
			}
			c.DBStatementTimeout = d
			return nil
		}},
	{"WAGATE_API_KEY", "", "", "global API key; empty means one is generated on first start into <data-dir>/api-key (0600)",
		func(c *Config, v string) error { c.APIKey = v; return nil }},
	{"WAGATE_SECRET_KEY", "", "", "master key for secrets at rest, base64 of 32 bytes; empty means generated into <data-dir>/secret-key (0600)",
		func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			key, err := base64.StdEncoding.DecodeString(v)
			if err != nil || len(key) != 32 {
				return errors.New("must be the base64 encoding of 32 bytes")
			}
			c.SecretKey = key
			return nil
		}},
	{"WAGATE_SERVER_URL", "server-url", "", "public base URL of this gateway, sent as server_url in webhooks; empty means http://<listen>",
		func(c *Config, v string) error { c.ServerURL = strings.TrimRight(v, "/"); return nil }},
	{"WAGATE_MAX_BODY_BYTES", "max-body-bytes", "1048576", "largest accepted request body in bytes (413 above)",
		func(c *Config, v string) error { return positiveInt(v, &c.MaxBodyBytes) }},
	// 16384 characters is four WhatsApp screens of text, more than anyone
	// types; a longer paste is cut rather than fed whole to the model.
	{"WAGATE_MAX_INBOUND_TEXT", "max-inbound-text", "16384", "characters of an inbound message's text that are kept (and read by bots); the rest is cut, with a note saying so",
		func(c *Config, v string) error { return positiveIntTo(v, &c.MaxInboundText) }},
	{"WAGATE_SHUTDOWN_TIMEOUT", "shutdown-timeout", "15s", "how long in-flight requests may take to finish on SIGINT/SIGTERM",
		func(c *Config, v string) error { return positiveDuration(v, &c.ShutdownTimeout) }},
	{"WAGATE_LOG_LEVEL", "log-level", "info", "debug, info, warn or error",
		func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
	{"WAGATE_LOG_FORMAT", "log-format", "text", "text or json",
		func(c *Config, v string) error {
			if v != "text" && v != "json" {
				return errors.New(`must be "text" or "json"`)
			}
			c.LogFormat = v
			return nil
		}},
	{"WAGATE_QR_TERMINAL", "qr-terminal", "false", "print WhatsApp pairing QR codes on standard output as well (true or false)",
		func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New(`must be "true" or "false"`)
			}
			c.QRTerminal = b
			return nil
		}},
	{"WAGATE_ALLOW_PRIVATE_FETCH", "allow-private-fetch", "false", "let URLs the gateway fetches reach private, loopback and link-local addresses (true or false); for tests and local demos only",
		func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New(`must be "true" or "false"`)
			}
			c.AllowPrivateFetch = b
			return nil
		}},
	{"WAGATE_METRICS_TOKEN", "", "", "bearer token that GET /metrics requires (the global API key is accepted too); empty leaves /metrics open",
		func(c *Config, v string) error { c.MetricsToken = v; return nil }},
	{"WAGATE_OPENAI_BASE_URL", "openai-base-url", "https://api.openai.com/v1", "base URL of OpenAI credentials that do not set baseUrl",
		func(c *Config, v string) error {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errors.New("must be an absolute http or https URL")
			}
			c.OpenAIBaseURL = strings.TrimRight(v, "/")
			return nil
		}},
	{"WAGATE_MAX_CONCURRENT_MODEL_CALLS", "max-concurrent-model-calls", "256", "model calls in flight at once per credential (each credential is bounded and paced by its provider's rate-limit headers on its own)",
		func(c *Config, v string) error { return positiveIntTo(v, &c.MaxConcurrentModelCalls) }},
	{"WAGATE_HISTORY_TOKENS", "history-tokens", "8000", "token budget of the conversation history sent with each model call (oldest turns dropped first)",
		func(c *Config, v string) error { return positiveIntTo(v, &c.HistoryTokens) }},
	{"WAGATE_MODEL_TIMEOUT", "model-timeout", "60s", "timeout of one model call, its wait for a slot of its credential included (retried up to 3 attempts on 429, 5xx and timeouts)",
		func(c *Config, v string) error { return positiveDuration(v, &c.ModelTimeout) }},
	{"WAGATE_TRANSCRIBE_MODEL", "transcribe-model", "gpt-4o-mini-transcribe", "model that transcribes audio messages of bots with speechToText",
		func(c *Config, v string) error {
			if strings.TrimSpace(v) == "" {
				return errors.New("must not be empty")
			}
			c.TranscribeModel = v
			return nil
		}},
	{"WAGATE_MESSAGE_RETENTION_DAYS", "message-retention-days", "0", "messages and closed bot sessions older than this many days are deleted, in the background; 0 keeps them",
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 36500 {
				return errors.New("must be a whole number of days from 0 (keep everything) to 36500")
			}
			c.MessageRetentionDays = n
			return nil
		}},
	{"WAGATE_KNOWLEDGE_MAX_FILE_BYTES", "knowledge-max-file-bytes", "26214400", "largest file a knowledge-base upload may carry, in bytes (25 MiB)",
		func(c *Config, v string) error { return positiveInt(v, &c.KnowledgeMaxFileBytes) }},
	{"WAGATE_KNOWLEDGE_MAX_SOURCES", "knowledge-max-sources", "5000", "knowledge sources one organization may hold, across its chatbots",
		func(c *Config, v string) error { return positiveIntTo(v, &c.KnowledgeMaxSources) }},
	{"WAGATE_KNOWLEDGE_MAX_BYTES", "knowledge-max-bytes", "1073741824", "bytes of knowledge sources (files, texts) one organization may hold (1 GiB)",
		func(c *Config, v string) error { return positiveInt(v, &c.KnowledgeMaxBytes) }},
	{"WAGATE_KNOWLEDGE_MAX_CHUNKS", "knowledge-max-chunks", "500000", "knowledge chunks one organization may hold; a source that would pass it fails with that reason",
		func(c *Config, v string) error { return positiveIntTo(v, &c.KnowledgeMaxChunks) }},
	{"WAGATE_KNOWLEDGE_WORKERS", "knowledge-workers", "2", "knowledge sources extracted and embedded at once (in the background, apart from message handling)",
		func(c *Config, v string) error { return positiveIntTo(v, &c.KnowledgeWorkers) }},
	{"WAGATE_WEBHOOK_TIMEOUT", "webhook-timeout", "10s", "timeout of one webhook delivery attempt",
		func(c *Config, v string) error { return positiveDuration(v, &c.WebhookTimeout) }},
	{"WAGATE_WEBHOOK_RETRY_BASE", "webhook-retry-base", "2s", "delay before the first webhook retry; doubles with each attempt (with jitter)",
		func(c *Config, v string) error { return positiveDuration(v, &c.WebhookRetryBase) }},
	{"WAGATE_WEBHOOK_MAX_BACKOFF", "webhook-max-backoff", "5m", "longest delay between two webhook attempts",
		func(c *Config, v string) error { return positiveDuration(v, &c.WebhookMaxBackoff) }},
	{"WAGATE_WEBHOOK_MAX_AGE", "webhook-max-age", "24h", "a webhook delivery still failing this long after its event is given up",
		func(c *Config, v string) error { return positiveDuration(v, &c.WebhookMaxAge) }},
	{"WAGATE_LEASE_DURATION", "lease-duration", "10s", "PostgreSQL replicas: how long a replica's lease on an instance holds without renewal; a replica that dies loses its instances within this (plus a third of it for another to notice)",
		func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second {
				return errors.New(`must be a duration of at least 1s, such as "10s"`)
			}
			c.LeaseDuration = d
			return nil
		}},
	{"WAGATE_REPLICA_MAX_INSTANCES", "replica-max-instances", "0", "PostgreSQL replicas: the most instances one replica owns; 0 means no limit",
		func(c *Config, v string) error { return wholeNumber(v, &c.ReplicaMaxInstances, "for no limit") }},
	{"WAGATE_REPLICA_NAME", "replica-name", "", "PostgreSQL replicas: this replica's name, shown as the owner of its instances; empty means <hostname>:<port>",
		func(c *Config, v string) error { c.ReplicaName = strings.TrimSpace(v); return nil }},
	{"WAGATE_REPLICA_ADDRESS", "replica-address", "", "PostgreSQL replicas: base URL at which the other replicas reach this one's API, to pass it the requests of the WhatsApp instances it owns; empty means http://<listen address>, or http://<hostname>:<port> when listening on all interfaces",
		func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errors.New("must be an absolute http or https URL")
			}
			c.ReplicaAddress = strings.TrimRight(v, "/")
			return nil
		}},
}

// Load builds the configuration from the environment (through getenv) and
// the command-line arguments (without the program name).
func Load(args []string, getenv func(string) string) (Config, error) {
	values := make(map[string]string, len(options))
	for _, o := range options {
		values[o.env] = o.def
		if v := getenv(o.env); v != "" {
			values[o.env] = v
		}
	}

	fs := flag.NewFlagSet("wagate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flagged := map[string]*string{}
	for _, o := range options {
		if o.flag != "" {
			flagged[o.env] = fs.String(o.flag, values[o.env], o.usage+" ("+o.env+")")
		}
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("flags: %w", err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("flags: unexpected argument %q", fs.Arg(0))
	}
	for env, p := range flagged {
		values[env] = *p
	}

	var c Config
	var errs []error
	for _, o := range options {
		if err := o.set(&c, values[o.env]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.env, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	c.ModelRetryBase, c.SessionSweepEach = time.Second, 30*time.Second
	c.RetentionSweepEach = time.Hour
	c.KnowledgeLease = time.Minute
	if c.DatabaseURL == "" {
		c.DatabaseURL = "file:" + filepath.Join(c.DataDir, "wagate.db")
	}
	if c.ServerURL == "" {
		host, port, _ := net.SplitHostPort(c.Listen)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		c.ServerURL = "http://" + net.JoinHostPort(host, port)
	}
	return c, nil
}

// Usage writes the table of settings, for -h.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: wagate [flags]\n\nSettings (flag, environment variable, default):")
	for _, o := range options {
		name := "(env only)"
		if o.flag != "" {
			name = "-" + o.flag
		}
		fmt.Fprintf(w, "  %-22s %-28s %q\n      %s\n", name, o.env, o.def, o.usage)
	}
}

func positiveInt[T int | int64](v string, dst *T) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return errors.New("must be a positive integer")
	}
	*dst = T(n)
	return nil
}

// wholeNumber parses a count of zero or more; zero says what 0 means.
func wholeNumber(v string, dst *int, zero string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return errors.New("must be a whole number, 0 " + zero)
	}
	*dst = n
	return nil
}

func positiveDuration(v string, dst *time.Duration) error {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return errors.New(`must be a positive duration such as "10s" or "5m"`)
	}
	*dst = d
	return nil
}

func positiveIntTo(v string, dst *int) error {
	var n int64
	if err := positiveInt(v, &n); err != nil {
		return err
	}
	*dst = int(n)
	return nil
}
