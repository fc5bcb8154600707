package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// File names, inside the data dir, of the keys generated when none is configured.
const (
	APIKeyFile    = "api-key"
	SecretKeyFile = "secret-key"
)

// ResolveKeys fills in the global API key and the master secret key when the
// environment did not set them: each is read from its file in the data dir,
// or generated on first start into a new 0600 file. The log names the file,
// never the key.
func (c *Config) ResolveKeys(log *slog.Logger) error {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if c.APIKey == "" {
		path := filepath.Join(c.DataDir, APIKeyFile)
		key, created, err := loadOrCreate(path, func() (string, error) {
			b, err := randomBytes(32)
			return "wgk_" + base64.RawURLEncoding.EncodeToString(b), err
		})
		if err != nil {
			return fmt.Errorf("global API key: %w", err)
		}
		c.APIKey = key
		if created {
			log.Info("generated the global API key; read it from the file", "file", path)
		} else {
			log.Info("using the global API key from its file", "file", path)
		}
	}
	if c.SecretKey == nil {
		path := filepath.Join(c.DataDir, SecretKeyFile)
		enc, created, err := loadOrCreate(path, func() (string, error) {
			b, err := randomBytes(32)
			return base64.StdEncoding.EncodeToString(b), err
		})
		if err != nil {
			return fmt.Errorf("secret key: %w", err)
		}
		key, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || len(key) != 32 {
			return fmt.Errorf("secret key file %s: must hold the base64 encoding of 32 bytes", path)
		}
		c.SecretKey = key
		if created {
			log.Info("generated the master secret key; back it up, stored secrets cannot be read without it", "file", path)
		}
	}
	return nil
}

// loadOrCreate returns the trimmed content of path, or writes gen() to a new
// 0600 file there. O_EXCL keeps two starting processes from both writing.
func loadOrCreate(path string, gen func() (string, error)) (value string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, false, nil
		}
		return "", false, fmt.Errorf("%s is empty", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	v, err := gen()
	if err != nil {
		return "", false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadOrCreate(path, gen)
	} else if err != nil {
		return "", false, err
	}
	if _, err := f.WriteString(v + "\n"); err != nil {
		f.Close()
		return "", false, err
	}
	if err := f.Close(); err != nil {
		return "", false, err
	}
	return v, true, nil
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := rand.Read(b)
	return b, err
}
