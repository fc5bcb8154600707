package whatsapp_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/wagate/wagate/gateway/whatsapp"
	"github.com/wagate/wagate/gateway/whatsapp/watest"
	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// TestReplicasStartTogether starts several gateways on one empty
// PostgreSQL database at the same moment, each opening the store and the
// WhatsApp device store: every migration, wagate's and whatsmeow's, runs
// once under the migration lock, and every start succeeds.
func TestReplicasStartTogether(t *testing.T) {
	if why := storetest.Unavailable(storetest.Postgres); why != "" {
		t.Skip(why)
	}
	url := storetest.NewURL(t, storetest.Postgres)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const replicas = 4
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			st, err := store.Open(context.Background(), store.Options{URL: url, SecretKey: bytes.Repeat([]byte{7}, 32)}, log)
			if err != nil {
				errs[i] = err
				return
			}
			defer st.Close()
			ch := whatsapp.New(&host{sent: map[string]bool{}}, st, log, whatsapp.Config{NewClient: watest.NewFactory().New})
			errs[i] = ch.Start(context.Background())
			ch.Stop()
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	var versions int
	if err := storetest.RawDB(t, url).QueryRow("SELECT COUNT(*) FROM whatsmeow_version").Scan(&versions); err != nil || versions != 1 {
		t.Errorf("whatsmeow_version has %d rows (%v), want 1", versions, err)
	}
}
