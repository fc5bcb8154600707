package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env returns a getenv over a fixed map, so tests never read the process environment.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var key32 = bytes.Repeat([]byte{0xAB}, 32)

func TestLoadDefaults(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Config{
		Listen:             ":8080",
		DataDir:            "./data",
		DatabaseURL:        "file:" + filepath.Join("./data", "wagate.db"),
		ServerURL:          "http://localhost:8080",
		MaxBodyBytes:       1 << 20,
		ShutdownTimeout:    15 * time.Second,
		LogLevel:           slog.LevelInfo,
		LogFormat:          "text",
		DBMaxOpenConns:     20,
		DBMaxIdleConns:     0,
		DBConnMaxLifetime:  30 * time.Minute,
		DBStatementTimeout: 30 * time.Second,
		OpenAIBaseURL:      "https://api.openai.com/v1",
		WebhookTimeout:     10 * time.Second,
		WebhookRetryBase:   2 * time.Second,
		WebhookMaxBackoff:  5 * time.Minute,
		WebhookMaxAge:      24 * time.Hour,
	}
	assertConfig(t, c, want)
	if c.APIKey != "" || c.SecretKey != nil {
		t.Errorf("APIKey = %q, SecretKey = %x; want both unset so ResolveKeys fills them", c.APIKey, c.SecretKey)
	}
	if c.DatabaseURL != "file:data/wagate.db" {
		t.Errorf("DatabaseURL = %q, want file:data/wagate.db", c.DatabaseURL)
	}
}

func TestLoadEnvAndFlags(t *testing.T) {
	fullEnv := map[string]string{
		"WAGATE_LISTEN":               "127.0.0.1:9000",
		"WAGATE_DATA_DIR":             "/var/lib/wagate",
		"WAGATE_DATABASE_URL":         "file:/tmp/other.db",
		"WAGATE_API_KEY":              "global-key",
		"WAGATE_SECRET_KEY":           base64.StdEncoding.EncodeToString(key32),
		"WAGATE_SERVER_URL":           "https://gw.example.com/",
		"WAGATE_MAX_BODY_BYTES":       "2048",
		"WAGATE_SHUTDOWN_TIMEOUT":     "3s",
		"WAGATE_LOG_LEVEL":            "debug",
		"WAGATE_LOG_FORMAT":           "json",
		"WAGATE_OPENAI_BASE_URL":      "http://127.0.0.1:8090/v1/",
		"WAGATE_DB_MAX_OPEN_CONNS":    "50",
		"WAGATE_DB_MAX_IDLE_CONNS":    "5",
		"WAGATE_DB_CONN_MAX_LIFETIME": "1h",
		"WAGATE_DB_STATEMENT_TIMEOUT": "0",
		"WAGATE_WEBHOOK_TIMEOUT":      "4s",
		"WAGATE_WEBHOOK_RETRY_BASE":   "500ms",
		"WAGATE_WEBHOOK_MAX_BACKOFF":  "1m",
		"WAGATE_WEBHOOK_MAX_AGE":      "2h",
	}
	fromEnv := Config{
		Listen:             "127.0.0.1:9000",
		DataDir:            "/var/lib/wagate",
		DatabaseURL:        "file:/tmp/other.db",
		APIKey:             "global-key",
		SecretKey:          key32,
		ServerURL:          "https://gw.example.com",
		MaxBodyBytes:       2048,
		ShutdownTimeout:    3 * time.Second,
		LogLevel:           slog.LevelDebug,
		LogFormat:          "json",
		DBMaxOpenConns:     50,
		DBMaxIdleConns:     5,
		DBConnMaxLifetime:  time.Hour,
		DBStatementTimeout: 0,
		OpenAIBaseURL:      "http://127.0.0.1:8090/v1",
		WebhookTimeout:     4 * time.Second,
		WebhookRetryBase:   500 * time.Millisecond,
		WebhookMaxBackoff:  time.Minute,
		WebhookMaxAge:      2 * time.Hour,
	}

	tests := []struct {
		name string
		args []string
		env  map[string]string
		want Config
	}{
		{name: "env only", env: fullEnv, want: fromEnv},
		{
			name: "flags override env",
			env:  fullEnv,
			args: []string{
				"-listen", "[::1]:7000",
				"-data-dir", "/srv/data",
				"-database-url", "file:/srv/x.db",
				"-server-url", "http://flag.example",
				"-max-body-bytes", "99",
				"-shutdown-timeout", "1m",
				"-log-level", "warn",
				"--log-format=text",
				"-openai-base-url", "https://llm.example/v1",
				"-db-max-open-conns", "8",
				"-db-max-idle-conns", "2",
				"-db-conn-max-lifetime", "5m",
				"-db-statement-timeout", "1500ms",
				"-webhook-timeout", "1s",
				"-webhook-retry-base", "1s",
				"-webhook-max-backoff", "10s",
				"-webhook-max-age", "30m",
				"-message-retention-days", "30",
			},
			want: Config{
				Listen:             "[::1]:7000",
				DataDir:            "/srv/data",
				DatabaseURL:        "file:/srv/x.db",
				APIKey:             "global-key",
				SecretKey:          key32,
				ServerURL:          "http://flag.example",
				MaxBodyBytes:       99,
				ShutdownTimeout:    time.Minute,
				LogLevel:           slog.LevelWarn,
				LogFormat:          "text",
				DBMaxOpenConns:     8,
				DBMaxIdleConns:     2,
				DBConnMaxLifetime:  5 * time.Minute,
				DBStatementTimeout: 1500 * time.Millisecond,
				OpenAIBaseURL:      "https://llm.example/v1",
				WebhookTimeout:     time.Second,
				WebhookRetryBase:   time.Second,
				WebhookMaxBackoff:  10 * time.Second,
				WebhookMaxAge:      30 * time.Minute,

				MessageRetentionDays: 30,
			},
		},
		{
			name: "a flag overrides only its own setting",
			env:  fullEnv,
			args: []string{"-log-level", "error"},
			want: func() Config { c := fromEnv; c.LogLevel = slog.LevelError; return c }(),
		},
		{
			name: "flags without env",
			args: []string{"-data-dir", "/srv/d", "-listen", "0.0.0.0:81"},
			want: Config{
				Listen:             "0.0.0.0:81",
				DataDir:            "/srv/d",
				DatabaseURL:        "file:/srv/d/wagate.db",
				ServerURL:          "http://localhost:81",
				MaxBodyBytes:       1 << 20,
				ShutdownTimeout:    15 * time.Second,
				LogLevel:           slog.LevelInfo,
				LogFormat:          "text",
				DBMaxOpenConns:     20,
				DBMaxIdleConns:     0,
				DBConnMaxLifetime:  30 * time.Minute,
				DBStatementTimeout: 30 * time.Second,
				OpenAIBaseURL:      "https://api.openai.com/v1",
				WebhookTimeout:     10 * time.Second,
				WebhookRetryBase:   2 * time.Second,
				WebhookMaxBackoff:  5 * time.Minute,
				WebhookMaxAge:      24 * time.Hour,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, env(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			assertConfig(t, c, tt.want)
		})
	}
}

func TestLoadDerivedDefaults(t *testing.T) {
	tests := []struct {
		name            string
		env             map[string]string
		wantDatabaseURL string
		wantServerURL   string
	}{
		{"data dir", map[string]string{"WAGATE_DATA_DIR": "/x/y"}, "file:/x/y/wagate.db", "http://localhost:8080"},
		{"relative data dir", map[string]string{"WAGATE_DATA_DIR": "state/"}, "file:state/wagate.db", "http://localhost:8080"},
		{"explicit database url wins", map[string]string{"WAGATE_DATA_DIR": "/x", "WAGATE_DATABASE_URL": "postgres://db/w"}, "postgres://db/w", "http://localhost:8080"},
		{"ipv4 any", map[string]string{"WAGATE_LISTEN": "0.0.0.0:8081"}, "file:data/wagate.db", "http://localhost:8081"},
		{"ipv6 any", map[string]string{"WAGATE_LISTEN": "[::]:8082"}, "file:data/wagate.db", "http://localhost:8082"},
		{"empty host", map[string]string{"WAGATE_LISTEN": ":9"}, "file:data/wagate.db", "http://localhost:9"},
		{"ipv4 host", map[string]string{"WAGATE_LISTEN": "192.0.2.7:80"}, "file:data/wagate.db", "http://192.0.2.7:80"},
		{"ipv6 host keeps brackets", map[string]string{"WAGATE_LISTEN": "[::1]:80"}, "file:data/wagate.db", "http://[::1]:80"},
		{"name host", map[string]string{"WAGATE_LISTEN": "gw.local:443"}, "file:data/wagate.db", "http://gw.local:443"},
		{"server url set", map[string]string{"WAGATE_SERVER_URL": "https://a.example/base//"}, "file:data/wagate.db", "https://a.example/base"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(nil, env(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.DatabaseURL != tt.wantDatabaseURL {
				t.Errorf("DatabaseURL = %q, want %q", c.DatabaseURL, tt.wantDatabaseURL)
			}
			if c.ServerURL != tt.wantServerURL {
				t.Errorf("ServerURL = %q, want %q", c.ServerURL, tt.wantServerURL)
			}
		})
	}
}

func TestLoadValidation(t *testing.T) {
	tests := []struct {
		env, value string
	}{
		{"WAGATE_LISTEN", "8080"},
		{"WAGATE_LISTEN", "localhost"},
		{"WAGATE_SECRET_KEY", "not base64!"},
		{"WAGATE_SECRET_KEY", base64.StdEncoding.EncodeToString(make([]byte, 16))},
		{"WAGATE_SECRET_KEY", base64.StdEncoding.EncodeToString(make([]byte, 33))},
		{"WAGATE_MAX_BODY_BYTES", "0"},
		{"WAGATE_MAX_BODY_BYTES", "-1"},
		{"WAGATE_MAX_BODY_BYTES", "1MB"},
		{"WAGATE_SHUTDOWN_TIMEOUT", "15"},
		{"WAGATE_SHUTDOWN_TIMEOUT", "0s"},
		{"WAGATE_SHUTDOWN_TIMEOUT", "-1s"},
		{"WAGATE_LOG_LEVEL", "verbose"},
		{"WAGATE_LOG_FORMAT", "xml"},
		{"WAGATE_LOG_FORMAT", "JSON"},
		{"WAGATE_OPENAI_BASE_URL", "api.openai.com/v1"},
		{"WAGATE_OPENAI_BASE_URL", "ftp://x/v1"},
		{"WAGATE_MAX_CONCURRENT_MODEL_CALLS", "0"},
		{"WAGATE_HISTORY_TOKENS", "-1"},
		{"WAGATE_MODEL_TIMEOUT", "1"},
		{"WAGATE_TRANSCRIBE_MODEL", " "},
		{"WAGATE_MESSAGE_RETENTION_DAYS", "-1"},
		{"WAGATE_MESSAGE_RETENTION_DAYS", "30d"},
		{"WAGATE_MESSAGE_RETENTION_DAYS", "36501"},
		{"WAGATE_WEBHOOK_TIMEOUT", "soon"},
		{"WAGATE_WEBHOOK_RETRY_BASE", "0"},
		{"WAGATE_WEBHOOK_MAX_BACKOFF", "-5m"},
		{"WAGATE_WEBHOOK_MAX_AGE", "1d"},
		{"WAGATE_DB_MAX_OPEN_CONNS", "0"},
		{"WAGATE_DB_MAX_OPEN_CONNS", "many"},
		{"WAGATE_DB_MAX_IDLE_CONNS", "-1"},
		{"WAGATE_DB_CONN_MAX_LIFETIME", "0"},
		{"WAGATE_DB_CONN_MAX_LIFETIME", "30"},
		{"WAGATE_DB_STATEMENT_TIMEOUT", "-1s"},
		{"WAGATE_DB_STATEMENT_TIMEOUT", "30"},
	}
	for _, tt := range tests {
		t.Run(tt.env+"="+tt.value, func(t *testing.T) {
			_, err := Load(nil, env(map[string]string{tt.env: tt.value}))
			if err == nil {
				t.Fatalf("Load accepted %s=%q", tt.env, tt.value)
			}
			if !strings.Contains(err.Error(), tt.env+":") {
				t.Errorf("error %q does not name %s", err, tt.env)
			}
			// Only the bad setting is blamed.
			for _, o := range options {
				if o.env != tt.env && strings.Contains(err.Error(), o.env+":") {
					t.Errorf("error %q also blames %s", err, o.env)
				}
			}
		})
	}

	// The same problems given as flags are reported under the same names.
	t.Run("flag", func(t *testing.T) {
		_, err := Load([]string{"-max-body-bytes", "0"}, env(nil))
		if err == nil || !strings.Contains(err.Error(), "WAGATE_MAX_BODY_BYTES:") {
			t.Fatalf("err = %v, want one naming WAGATE_MAX_BODY_BYTES", err)
		}
	})

	// Every problem is reported at once, not only the first.
	t.Run("all problems", func(t *testing.T) {
		_, err := Load(nil, env(map[string]string{
			"WAGATE_LISTEN":          "nope",
			"WAGATE_LOG_FORMAT":      "xml",
			"WAGATE_WEBHOOK_MAX_AGE": "0",
		}))
		if err == nil {
			t.Fatal("Load accepted three bad settings")
		}
		for _, name := range []string{"WAGATE_LISTEN:", "WAGATE_LOG_FORMAT:", "WAGATE_WEBHOOK_MAX_AGE:"} {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name %s", err, name)
			}
		}
	})
}

func TestLoadLogLevels(t *testing.T) {
	for v, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		c, err := Load(nil, env(map[string]string{"WAGATE_LOG_LEVEL": v}))
		if err != nil {
			t.Errorf("WAGATE_LOG_LEVEL=%s: %v", v, err)
			continue
		}
		if c.LogLevel != want {
			t.Errorf("WAGATE_LOG_LEVEL=%s: LogLevel = %v, want %v", v, c.LogLevel, want)
		}
	}
}

func TestLoadFlagErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantHelp bool
		contains string
	}{
		{name: "-h", args: []string{"-h"}, wantHelp: true},
		{name: "-help", args: []string{"-help"}, wantHelp: true},
		{name: "--help", args: []string{"--help"}, wantHelp: true},
		{name: "unknown flag", args: []string{"-nope"}, contains: "nope"},
		// Keys are env-only: a flag would leak them into ps output.
		{name: "api key is env only", args: []string{"-api-key", "x"}, contains: "api-key"},
		{name: "secret key is env only", args: []string{"-secret-key", "x"}, contains: "secret-key"},
		{name: "missing flag value", args: []string{"-listen"}, contains: "listen"},
		{name: "positional argument", args: []string{"serve"}, contains: `"serve"`},
		{name: "argument after flags", args: []string{"-listen", ":1", "extra"}, contains: `"extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, env(nil))
			if err == nil {
				t.Fatalf("Load(%q) = %+v, want an error", tt.args, c)
			}
			if got := errors.Is(err, flag.ErrHelp); got != tt.wantHelp {
				t.Errorf("errors.Is(%v, flag.ErrHelp) = %v, want %v", err, got, tt.wantHelp)
			}
			if tt.contains != "" && !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not contain %q", err, tt.contains)
			}
		})
	}
}

func TestUsageListsEverySetting(t *testing.T) {
	var b bytes.Buffer
	Usage(&b)
	out := b.String()
	for _, o := range options {
		if !strings.Contains(out, o.env) {
			t.Errorf("usage does not mention %s", o.env)
		}
		if o.flag != "" && !strings.Contains(out, "-"+o.flag) {
			t.Errorf("usage does not mention -%s", o.flag)
		}
	}
}

func assertConfig(t *testing.T, got, want Config) {
	t.Helper()
	if !bytes.Equal(got.SecretKey, want.SecretKey) {
		t.Errorf("SecretKey = %x, want %x", got.SecretKey, want.SecretKey)
	}
	got.SecretKey, want.SecretKey = nil, nil
	// Bot engine settings keep their defaults unless a case sets them.
	if want.MaxConcurrentModelCalls == 0 {
		want.MaxConcurrentModelCalls, want.HistoryTokens, want.ModelTimeout = 256, 8000, time.Minute
		want.TranscribeModel = "gpt-4o-mini-transcribe"
	}
	if want.MaxInboundText == 0 {
		want.MaxInboundText = 16384
	}
	want.ModelRetryBase, want.SessionSweepEach = time.Second, 30*time.Second
	want.RetentionSweepEach = time.Hour
	if want.LeaseDuration == 0 {
		want.LeaseDuration = 10 * time.Second
	}
	// Knowledge limits keep their defaults too.
	if want.KnowledgeMaxFileBytes == 0 {
		want.KnowledgeMaxFileBytes, want.KnowledgeMaxSources, want.KnowledgeMaxBytes = 25<<20, 5000, 1<<30
		want.KnowledgeMaxChunks, want.KnowledgeWorkers = 500000, 2
	}
	want.KnowledgeLease = time.Minute
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config mismatch\n got: %+v\nwant: %+v", got, want)
	}
}

// captureLog returns a logger writing text records into the returned buffer.
func captureLog() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

func readKeyFile(t *testing.T, path string) string {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("key file: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s mode = %v, want 0600", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func assertLogSafe(t *testing.T, log string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(log, s) {
			t.Errorf("log contains a key:\n%s", log)
		}
	}
}

func TestResolveKeysGeneratesThenReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data") // created by ResolveKeys
	apiPath := filepath.Join(dir, APIKeyFile)
	secretPath := filepath.Join(dir, SecretKeyFile)

	log, buf := captureLog()
	c := Config{DataDir: dir}
	if err := c.ResolveKeys(log); err != nil {
		t.Fatalf("ResolveKeys: %v", err)
	}
	if info, err := os.Stat(dir); err != nil {
		t.Fatalf("data dir: %v", err)
	} else if info.Mode().Perm()&0o077 != 0 {
		t.Errorf("data dir mode = %v, want no group/other access", info.Mode().Perm())
	}

	if !strings.HasPrefix(c.APIKey, "wgk_") || len(c.APIKey) < 40 {
		t.Errorf("APIKey = %q, want a long wgk_ key", c.APIKey)
	}
	if got := readKeyFile(t, apiPath); got != c.APIKey {
		t.Errorf("api-key file holds %q, config has %q", got, c.APIKey)
	}
	if len(c.SecretKey) != 32 {
		t.Fatalf("SecretKey has %d bytes, want 32", len(c.SecretKey))
	}
	secretB64 := readKeyFile(t, secretPath)
	if decoded, err := base64.StdEncoding.DecodeString(secretB64); err != nil || !bytes.Equal(decoded, c.SecretKey) {
		t.Errorf("secret-key file holds %q (%v), which is not the base64 of the config's key", secretB64, err)
	}
	if bytes.Equal(c.SecretKey, make([]byte, 32)) {
		t.Error("SecretKey is all zeros")
	}

	first := buf.String()
	if !strings.Contains(first, apiPath) {
		t.Errorf("log does not name %s:\n%s", apiPath, first)
	}
	if !strings.Contains(first, secretPath) {
		t.Errorf("log does not name %s:\n%s", secretPath, first)
	}
	assertLogSafe(t, first, c.APIKey, secretB64, strings.TrimPrefix(c.APIKey, "wgk_"))

	// A second start reads the same keys back and leaves the files alone.
	apiBefore, _ := os.ReadFile(apiPath)
	secretBefore, _ := os.ReadFile(secretPath)
	log2, buf2 := captureLog()
	c2 := Config{DataDir: dir}
	if err := c2.ResolveKeys(log2); err != nil {
		t.Fatalf("second ResolveKeys: %v", err)
	}
	if c2.APIKey != c.APIKey {
		t.Errorf("second APIKey = %q, want the first %q", c2.APIKey, c.APIKey)
	}
	if !bytes.Equal(c2.SecretKey, c.SecretKey) {
		t.Error("second SecretKey differs from the first")
	}
	apiAfter, _ := os.ReadFile(apiPath)
	secretAfter, _ := os.ReadFile(secretPath)
	if !bytes.Equal(apiBefore, apiAfter) || !bytes.Equal(secretBefore, secretAfter) {
		t.Error("second ResolveKeys rewrote a key file")
	}
	second := buf2.String()
	if !strings.Contains(second, apiPath) {
		t.Errorf("second log does not name %s:\n%s", apiPath, second)
	}
	if strings.Contains(second, "generated") {
		t.Errorf("second log claims a key was generated:\n%s", second)
	}
	assertLogSafe(t, second, c.APIKey, secretB64)
}

func TestResolveKeysDoesNotOverwrite(t *testing.T) {
	dir := t.TempDir()
	secret := base64.StdEncoding.EncodeToString(key32)
	if err := os.WriteFile(filepath.Join(dir, APIKeyFile), []byte("  operator-chosen-key \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, SecretKeyFile), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log, buf := captureLog()
	c := Config{DataDir: dir}
	if err := c.ResolveKeys(log); err != nil {
		t.Fatalf("ResolveKeys: %v", err)
	}
	if c.APIKey != "operator-chosen-key" {
		t.Errorf("APIKey = %q, want the trimmed file content", c.APIKey)
	}
	if !bytes.Equal(c.SecretKey, key32) {
		t.Errorf("SecretKey = %x, want the file's key", c.SecretKey)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, APIKeyFile)); string(b) != "  operator-chosen-key \n" {
		t.Errorf("api-key file was rewritten to %q", b)
	}
	assertLogSafe(t, buf.String(), "operator-chosen-key", secret)
}

func TestResolveKeysFromEnvWritesNoFile(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString(key32)
	tests := []struct {
		name        string
		env         map[string]string
		wantAPIFile bool
		wantSecFile bool
	}{
		{"both set", map[string]string{"WAGATE_API_KEY": "env-api", "WAGATE_SECRET_KEY": secret}, false, false},
		{"only api key", map[string]string{"WAGATE_API_KEY": "env-api"}, false, true},
		{"only secret key", map[string]string{"WAGATE_SECRET_KEY": secret}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			e := map[string]string{"WAGATE_DATA_DIR": dir}
			for k, v := range tt.env {
				e[k] = v
			}
			c, err := Load(nil, env(e))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			log, buf := captureLog()
			if err := c.ResolveKeys(log); err != nil {
				t.Fatalf("ResolveKeys: %v", err)
			}
			_, apiErr := os.Stat(filepath.Join(dir, APIKeyFile))
			if exists := apiErr == nil; exists != tt.wantAPIFile {
				t.Errorf("api-key file exists = %v, want %v", exists, tt.wantAPIFile)
			}
			_, secErr := os.Stat(filepath.Join(dir, SecretKeyFile))
			if exists := secErr == nil; exists != tt.wantSecFile {
				t.Errorf("secret-key file exists = %v, want %v", exists, tt.wantSecFile)
			}
			if !tt.wantAPIFile && !errors.Is(apiErr, fs.ErrNotExist) {
				t.Errorf("api-key stat: %v", apiErr)
			}
			if v, ok := tt.env["WAGATE_API_KEY"]; ok && c.APIKey != v {
				t.Errorf("APIKey = %q, want the env value %q", c.APIKey, v)
			}
			if _, ok := tt.env["WAGATE_SECRET_KEY"]; ok && !bytes.Equal(c.SecretKey, key32) {
				t.Errorf("SecretKey = %x, want the env value", c.SecretKey)
			}
			if c.APIKey == "" || len(c.SecretKey) != 32 {
				t.Errorf("keys not resolved: APIKey %q, SecretKey %d bytes", c.APIKey, len(c.SecretKey))
			}
			assertLogSafe(t, buf.String(), "env-api", secret, c.APIKey, base64.StdEncoding.EncodeToString(c.SecretKey))
		})
	}
}

func TestResolveKeysBadFiles(t *testing.T) {
	tests := []struct {
		name, file, content string
	}{
		{"empty api key file", APIKeyFile, " \n"},
		{"secret not base64", SecretKeyFile, "%%%\n"},
		{"secret too short", SecretKeyFile, base64.StdEncoding.EncodeToString(make([]byte, 31))},
		{"empty secret file", SecretKeyFile, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tt.file)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			log, _ := captureLog()
			c := Config{DataDir: dir}
			err := c.ResolveKeys(log)
			if err == nil {
				t.Fatal("ResolveKeys accepted a bad key file")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			if b, _ := os.ReadFile(path); string(b) != tt.content {
				t.Errorf("bad key file was overwritten with %q", b)
			}
		})
	}
}
