package store

import "github.com/google/uuid"

// NewID returns an id for a new record. Records are listed in creation
// order by (created_at, id), and created_at has millisecond precision: two
// records can share it, and random ids would then order them by chance.
// These ids are UUIDv7, whose time and sub-millisecond counter make every id
// greater than the ones this process made before, so the id breaks such
// ties in creation order. Records stored with older random ids keep an
// arbitrary but stable order among those created in the same millisecond.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }
