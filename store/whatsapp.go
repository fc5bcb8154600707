package store

import (
	"context"
	"database/sql"
	"time"

	"go.mau.fi/util/dbutil"
)

// DB returns the underlying database, for components that keep their own
// tables beside wagate's: whatsmeow's device store runs as a child of it
// with its own version table, so one database (and one backup) holds
// everything. On SQLite the store's own handle runs statements as written
// (see Open); the view returned names the dialect, which migrations and
// whatsmeow's dialect-specific queries need, and shares the store's
// connection and transactions.
func (s *Store) DB() *dbutil.Database {
	if s.postgres {
		return s.db.Database
	}
	db := *s.db.Database
	db.Dialect = dbutil.SQLite
	return &db
}

// PairedInstance is an instance with the WhatsApp device it is paired with.
type PairedInstance struct {
	*Instance
	DeviceJID string // full device JID, user:device@s.whatsapp.net
}

// SetDeviceJID records the WhatsApp device the instance is paired with; ""
// records that it is not paired (any more).
func (s *Store) SetDeviceJID(ctx context.Context, instanceID, jid string) error {
	defer s.configChanged()
	res, err := s.db.Exec(ctx, "UPDATE instances SET device_jid = $2, updated_at = $3 WHERE id = $1",
		instanceID, nullable(jid), millis(time.Now()))
	return mustAffect(res, err, "instance %s does not exist", instanceID)
}

// DeviceJID returns the WhatsApp device the instance is paired with, "" when
// none.
func (s *Store) DeviceJID(ctx context.Context, instanceID string) (string, error) {
	var jid sql.NullString
	err := s.db.QueryRow(ctx, "SELECT device_jid FROM instances WHERE id = $1", instanceID).Scan(&jid)
	return jid.String, notFound(err, "instance %s does not exist", instanceID)
}

// PairedInstances returns the instances paired with a WhatsApp device,
// oldest first: the ones to reconnect when the gateway starts.
func (s *Store) PairedInstances(ctx context.Context) ([]PairedInstance, error) {
	return collect(func(row scanner) (PairedInstance, error) {
		var jid string
		in, err := scanInstance(scanTail{row, &jid})
		return PairedInstance{Instance: in, DeviceJID: jid}, err
	})(s.db.Query(ctx, "SELECT "+instanceColumns+", device_jid FROM instances WHERE device_jid IS NOT NULL ORDER BY created_at, name"))
}

// scanTail scans a row that has extra columns after the ones scanInstance
// reads.
type scanTail struct {
	row  scanner
	tail any
}

func (t scanTail) Scan(dest ...any) error { return t.row.Scan(append(dest, t.tail)...) }
