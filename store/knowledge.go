package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.mau.fi/util/dbutil"

	"github.com/wagate/wagate"
)

// Knowledge source types and statuses.
const (
	SourceFile = "file"
	SourceURL  = "url"
	SourceText = "text"
	SourceQA   = "qa"

	SourcePending    = "pending"
	SourceProcessing = "processing"
	SourceReady      = "ready"
	SourceFailed     = "failed"
)

// KnowledgeSource is one file, web page, text or question-and-answer pair
// of a chatbot's knowledge base, and its ingestion job. A Q&A pair keeps
// its question in Title and its answer in Body.
type KnowledgeSource struct {
	ID             string
	ChatbotID      string
	OrganizationID string
	Type           string
	Title          string
	URL            string
	FileName       string
	ContentType    string
	Body           string
	Data           []byte // an uploaded file; read only by the job
	Size           int64  // bytes counted against the organization's limit
	Status         string
	Error          string // why it failed, for the user
	Note           string // e.g. searchable by full text only
	Chunks         int
	Characters     int64
	Attempts       int
	Claim          string // the job attempt that holds it
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// KnowledgeChunk is a passage of a ready source. Title is its source's
// title when read back.
type KnowledgeChunk struct {
	Seq       int64
	ID        string
	SourceID  string
	ChatbotID string
	Position  int
	Heading   string
	Content   string
	Tokens    int
	Embedding []float32 // nil when no embedding model was available
	Title     string
	Type      string
}

// KnowledgeLimits bound one organization's knowledge bases; zero means no
// limit.
type KnowledgeLimits struct {
	MaxSources int
	MaxBytes   int64
	MaxChunks  int
}

const sourceColumns = `id, chatbot_id, organization_id, type, title, url, file_name, content_type, body, size, status,
	error, note, chunks, characters, attempts, claim, created_at, updated_at`

func scanSource(row scanner) (*KnowledgeSource, error) {
	var (
		k                KnowledgeSource
		created, updated int64
	)
	err := row.Scan(&k.ID, &k.ChatbotID, &k.OrganizationID, &k.Type, &k.Title, &k.URL, &k.FileName, &k.ContentType,
		&k.Body, &k.Size, &k.Status, &k.Error, &k.Note, &k.Chunks, &k.Characters, &k.Attempts, &k.Claim, &created, &updated)
	if err != nil {
		return nil, err
	}
	k.CreatedAt, k.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &k, nil
}

// KnowledgeUsage is what an organization's knowledge bases hold.
type KnowledgeUsage struct {
	Sources int
	Bytes   int64
	Chunks  int
}

// KnowledgeUsage returns what the organization's knowledge bases hold.
func (s *Store) KnowledgeUsage(ctx context.Context, orgID string) (KnowledgeUsage, error) {
	var u KnowledgeUsage
	err := s.db.QueryRow(ctx, `SELECT count(*), coalesce(sum(size), 0), coalesce(sum(chunks), 0)
		FROM knowledge_sources WHERE organization_id = $1`, orgID).Scan(&u.Sources, &u.Bytes, &u.Chunks)
	return u, err
}

// CreateKnowledgeSources stores new sources, pending, unless they would
// take their organization past lim.
func (s *Store) CreateKnowledgeSources(ctx context.Context, lim KnowledgeLimits, srcs []*KnowledgeSource) error {
	if len(srcs) == 0 {
		return nil
	}
	return s.DoTxn(ctx, func(ctx context.Context) error {
		if s.postgres {
			// Two requests checking the limit at once must not both pass.
			if _, err := s.db.Exec(ctx, "SELECT id FROM organizations WHERE id = $1 FOR UPDATE", srcs[0].OrganizationID); err != nil {
				return err
			}
		}
		u, err := s.KnowledgeUsage(ctx, srcs[0].OrganizationID)
		if err != nil {
			return err
		}
		var size int64
		for _, k := range srcs {
			size += k.Size
		}
		if lim.MaxSources > 0 && u.Sources+len(srcs) > lim.MaxSources {
			return wagate.Errorf(wagate.ECONFLICT, "the organization's knowledge bases hold %d sources; the limit is %d", u.Sources, lim.MaxSources)
		}
		if lim.MaxBytes > 0 && u.Bytes+size > lim.MaxBytes {
			return wagate.Errorf(wagate.ECONFLICT, "the organization's knowledge bases hold %d bytes; %d more would pass the limit of %d",
				u.Bytes, size, lim.MaxBytes)
		}
		for _, k := range srcs {
			_, err := s.db.Exec(ctx, "INSERT INTO knowledge_sources ("+sourceColumns+`, data) VALUES ($1, $2, $3, $4, $5, $6,
				$7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
				k.ID, k.ChatbotID, k.OrganizationID, k.Type, k.Title, k.URL, k.FileName, k.ContentType, k.Body, k.Size,
				k.Status, k.Error, k.Note, k.Chunks, k.Characters, k.Attempts, k.Claim, millis(k.CreatedAt), millis(k.UpdatedAt), k.Data)
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// KnowledgeSources returns the chatbot's sources, oldest first.
func (s *Store) KnowledgeSources(ctx context.Context, chatbotID string) ([]*KnowledgeSource, error) {
	return collect(scanSource)(s.db.Query(ctx, "SELECT "+sourceColumns+
		" FROM knowledge_sources WHERE chatbot_id = $1 ORDER BY created_at, id", chatbotID))
}

// KnowledgeSource returns the chatbot's source id, without its file.
func (s *Store) KnowledgeSource(ctx context.Context, chatbotID, id string) (*KnowledgeSource, error) {
	k, err := scanSource(s.db.QueryRow(ctx, "SELECT "+sourceColumns+" FROM knowledge_sources WHERE chatbot_id = $1 AND id = $2", chatbotID, id))
	return k, notFound(err, "id: no knowledge source %q in this chatbot", id)
}

// RestartKnowledgeSource saves k's edited title, URL and body and queues
// it again: its chunks are removed at once (a source is searchable only
// when ready) and an attempt still running is disowned.
func (s *Store) RestartKnowledgeSource(ctx context.Context, k *KnowledgeSource) error {
	return s.DoTxn(ctx, func(ctx context.Context) error {
		res, err := s.db.Exec(ctx, `UPDATE knowledge_sources SET title = $3, url = $4, body = $5, size = $6, status = $7,
			error = '', note = '', chunks = 0, characters = 0, attempts = 0, lease_until = 0, claim = '', updated_at = $8
			WHERE chatbot_id = $1 AND id = $2`, k.ChatbotID, k.ID, k.Title, k.URL, k.Body, k.Size, SourcePending, millis(k.UpdatedAt))
		if err := mustAffect(res, err, "id: no knowledge source %q in this chatbot", k.ID); err != nil {
			return err
		}
		return s.dropChunks(ctx, k.ChatbotID, k.ID)
	})
}

func (s *Store) dropChunks(ctx context.Context, chatbotID, sourceID string) error {
	res, err := s.db.Exec(ctx, "DELETE FROM knowledge_chunks WHERE source_id = $1", sourceID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return s.bumpKnowledge(ctx, chatbotID)
	}
	return nil
}

// DeleteKnowledgeSource deletes the chatbot's source with its chunks,
// their vectors and full-text rows.
func (s *Store) DeleteKnowledgeSource(ctx context.Context, chatbotID, id string) error {
	return s.DoTxn(ctx, func(ctx context.Context) error {
		if err := s.dropChunks(ctx, chatbotID, id); err != nil {
			return err
		}
		res, err := s.db.Exec(ctx, "DELETE FROM knowledge_sources WHERE chatbot_id = $1 AND id = $2", chatbotID, id)
		return mustAffect(res, err, "id: no knowledge source %q in this chatbot", id)
	})
}

func (s *Store) bumpKnowledge(ctx context.Context, chatbotID string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO knowledge_versions (chatbot_id, version) VALUES ($1, 1)
		ON CONFLICT (chatbot_id) DO UPDATE SET version = knowledge_versions.version + 1`, chatbotID)
	return err
}

// KnowledgeVersion returns the version of the chatbot's searchable chunks;
// it moves on with every change to them.
func (s *Store) KnowledgeVersion(ctx context.Context, chatbotID string) (int64, error) {
	var v int64
	err := s.db.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM knowledge_versions WHERE chatbot_id = $1", chatbotID).Scan(&v)
	return v, err
}

// ClaimKnowledgeJob takes the oldest source waiting for ingestion, or
// whose lease ran out, for lease; nil when there is none. The source
// comes with its file.
func (s *Store) ClaimKnowledgeJob(ctx context.Context, lease time.Duration) (*KnowledgeSource, error) {
	now := time.Now()
	claim := uuid.NewString()
	// The lease is checked again on the row updated, so that of two
	// replicas claiming at once only one gets the job.
	rows, err := s.db.Query(ctx, `UPDATE knowledge_sources SET status = $1, lease_until = $2, attempts = attempts + 1,
		claim = $3, updated_at = $4
		WHERE id = (SELECT id FROM knowledge_sources WHERE status IN ('pending', 'processing') AND lease_until < $4
			ORDER BY lease_until, created_at LIMIT 1)
		AND status IN ('pending', 'processing') AND lease_until < $4
		RETURNING `+sourceColumns+", data", SourceProcessing, millis(now.Add(lease)), claim, millis(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	var (
		k                KnowledgeSource
		created, updated int64
	)
	if err := rows.Scan(&k.ID, &k.ChatbotID, &k.OrganizationID, &k.Type, &k.Title, &k.URL, &k.FileName, &k.ContentType,
		&k.Body, &k.Size, &k.Status, &k.Error, &k.Note, &k.Chunks, &k.Characters, &k.Attempts, &k.Claim, &created, &updated, &k.Data); err != nil {
		return nil, err
	}
	k.CreatedAt, k.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &k, rows.Err()
}

// RenewKnowledgeLease extends the lease of the attempt claim on source id;
// false when the attempt no longer holds it.
func (s *Store) RenewKnowledgeLease(ctx context.Context, id, claim string, lease time.Duration) (bool, error) {
	res, err := s.db.Exec(ctx, "UPDATE knowledge_sources SET lease_until = $3 WHERE id = $1 AND claim = $2 AND status = $4",
		id, claim, millis(time.Now().Add(lease)), SourceProcessing)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// ReleaseKnowledgeJob lets the attempt claim's job be taken up at once by
// the next worker (a gateway shutting down mid-job); the interrupted
// attempt does not count.
func (s *Store) ReleaseKnowledgeJob(ctx context.Context, id, claim string) error {
	_, err := s.db.Exec(ctx, "UPDATE knowledge_sources SET lease_until = 0, attempts = attempts - 1 WHERE id = $1 AND claim = $2 AND status = $3",
		id, claim, SourceProcessing)
	return err
}

// FailKnowledgeSource marks the attempt claim's source failed with the
// reason a user can act on.
func (s *Store) FailKnowledgeSource(ctx context.Context, id, claim, reason string) error {
	_, err := s.db.Exec(ctx, `UPDATE knowledge_sources SET status = $3, error = $4, lease_until = 0, updated_at = $5
		WHERE id = $1 AND claim = $2`, id, claim, SourceFailed, reason, millis(time.Now()))
	return err
}

// errDisowned is returned when a job's attempt lost its source (edited or
// deleted meanwhile); what it made is dropped.
var errDisowned = wagate.Errorf(wagate.ECONFLICT, "the source changed while it was processed")

// IsDisowned reports whether err says that a job attempt lost its source.
func IsDisowned(err error) bool { return err == errDisowned }

// CompleteKnowledgeSource stores the chunks the attempt claim made of k
// and marks k ready, with note (e.g. "searchable by full text only"),
// unless they would take the organization past its chunk limit: then it
// fails with that reason.
func (s *Store) CompleteKnowledgeSource(ctx context.Context, k *KnowledgeSource, chunks []KnowledgeChunk, note string, maxChunks int) error {
	return s.DoTxn(ctx, func(ctx context.Context) error {
		var claim string
		err := s.db.QueryRow(ctx, "SELECT claim FROM knowledge_sources WHERE id = $1", k.ID).Scan(&claim)
		if err != nil || claim != k.Claim {
			return errDisowned
		}
		if maxChunks > 0 {
			var n int
			if err := s.db.QueryRow(ctx, "SELECT coalesce(sum(chunks), 0) FROM knowledge_sources WHERE organization_id = $1 AND id <> $2",
				k.OrganizationID, k.ID).Scan(&n); err != nil {
				return err
			}
			if n+len(chunks) > maxChunks {
				return s.FailKnowledgeSource(ctx, k.ID, k.Claim, fmt.Sprintf(
					"this source makes %d chunks and the organization's knowledge bases hold %d; the limit is %d: delete sources or split this one",
					len(chunks), n, maxChunks))
			}
		}
		if _, err := s.db.Exec(ctx, "DELETE FROM knowledge_chunks WHERE source_id = $1", k.ID); err != nil {
			return err
		}
		var chars int64
		now := millis(time.Now())
		for _, c := range chunks {
			chars += int64(len([]rune(c.Content)))
			var emb any
			if c.Embedding != nil {
				emb = EncodeVector(c.Embedding)
			}
			if _, err := s.db.Exec(ctx, `INSERT INTO knowledge_chunks (id, source_id, chatbot_id, position, heading, content, tokens, embedding, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, c.ID, k.ID, k.ChatbotID, c.Position, c.Heading, c.Content, c.Tokens, emb, now); err != nil {
				return err
			}
		}
		if _, err := s.db.Exec(ctx, `UPDATE knowledge_sources SET status = $2, error = '', note = $3, chunks = $4, characters = $5,
			lease_until = 0, updated_at = $6 WHERE id = $1`, k.ID, SourceReady, note, len(chunks), chars, now); err != nil {
			return err
		}
		return s.bumpKnowledge(ctx, k.ChatbotID)
	})
}

// EncodeVector stores v compactly: float32 little-endian.
func EncodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

// DecodeVector is the inverse of EncodeVector, appending to dst.
func DecodeVector(dst []float32, b []byte) []float32 {
	for i := 0; i+4 <= len(b); i += 4 {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
	}
	return dst
}

// KnowledgeVectors calls fn with the row number and embedding of each of
// the chatbot's chunks that has one, in row order. b is valid during the
// call only.
func (s *Store) KnowledgeVectors(ctx context.Context, chatbotID string, fn func(seq int64, b []byte)) error {
	return eachVector(fn)(s.db.Query(ctx, "SELECT seq, embedding FROM knowledge_chunks WHERE chatbot_id = $1 AND embedding IS NOT NULL ORDER BY seq", chatbotID))
}

// eachVector returns a function that calls fn with each (seq, embedding)
// row of a query.
func eachVector(fn func(seq int64, b []byte)) func(dbutil.Rows, error) error {
	return func(rows dbutil.Rows, err error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				seq int64
				b   []byte
			)
			if err := rows.Scan(&seq, &b); err != nil {
				return err
			}
			fn(seq, b)
		}
		return rows.Err()
	}
}

// KnowledgeVectorsOf calls fn with the row number and embedding of each of
// the chatbot's chunks with row numbers seqs that has one, in no particular
// order. b is valid during the call only.
func (s *Store) KnowledgeVectorsOf(ctx context.Context, chatbotID string, seqs []int64, fn func(seq int64, b []byte)) error {
	if len(seqs) == 0 {
		return nil
	}
	args := []any{chatbotID}
	marks := make([]string, len(seqs))
	for i, q := range seqs {
		args = append(args, q)
		marks[i] = "$" + strconv.Itoa(i+2)
	}
	return eachVector(fn)(s.db.Query(ctx, `SELECT seq, embedding FROM knowledge_chunks
		WHERE chatbot_id = $1 AND embedding IS NOT NULL AND seq IN (`+strings.Join(marks, ", ")+")", args...))
}

// KnowledgeChunks returns the chatbot's chunks with row numbers seqs (with
// their source's title, without embeddings), in no particular order.
func (s *Store) KnowledgeChunks(ctx context.Context, chatbotID string, seqs []int64) ([]*KnowledgeChunk, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	args := []any{chatbotID}
	marks := make([]string, len(seqs))
	for i, q := range seqs {
		args = append(args, q)
		marks[i] = "$" + strconv.Itoa(i+2)
	}
	return collect(func(row scanner) (*KnowledgeChunk, error) {
		var c KnowledgeChunk
		return &c, row.Scan(&c.Seq, &c.ID, &c.SourceID, &c.ChatbotID, &c.Position, &c.Heading, &c.Content, &c.Tokens, &c.Title, &c.Type)
	})(s.db.Query(ctx, `SELECT c.seq, c.id, c.source_id, c.chatbot_id, c.position, c.heading, c.content, c.tokens, k.title, k.type
		FROM knowledge_chunks c JOIN knowledge_sources k ON k.id = c.source_id
		WHERE c.chatbot_id = $1 AND c.seq IN (`+strings.Join(marks, ", ")+")", args...))
}

// SearchKnowledgeText returns the row numbers of the chatbot's chunks that
// contain any of terms (plain words), best match first, at most limit.
func (s *Store) SearchKnowledgeText(ctx context.Context, chatbotID string, terms []string, limit int) ([]int64, error) {
	if len(terms) == 0 {
		return nil, nil
	}
	if s.postgres {
		q := strings.Join(terms, " | ")
		return collect(scanInt64)(s.db.Query(ctx, `SELECT seq FROM knowledge_chunks
			WHERE chatbot_id = $1 AND tsv @@ to_tsquery('simple', $2)
			ORDER BY ts_rank(tsv, to_tsquery('simple', $2)) DESC, seq LIMIT $3`, chatbotID, q, limit))
	}
	terms, err := s.discriminating(ctx, terms)
	if err != nil || len(terms) == 0 {
		return nil, err
	}
	quoted := make([]string, len(terms))
	for i, t := range terms {
		quoted[i] = `"` + strings.ReplaceAll(t, `"`, `""`) + `"`
	}
	return collect(scanInt64)(s.db.Query(ctx, `SELECT c.seq FROM knowledge_fts f JOIN knowledge_chunks c ON c.seq = f.rowid
		WHERE knowledge_fts MATCH $1 AND c.chatbot_id = $2 ORDER BY f.rank, c.seq LIMIT $3`,
		strings.Join(quoted, " OR "), chatbotID, limit))
}

// Terms held by more than commonShare of all chunks, and by more than
// commonFloor, are left out of a full-text search, and at most maxTerms of
// the rarest are kept: ranking every chunk that holds a common word costs
// hundreds of milliseconds in a base of 100,000 chunks and tells the
// chunks apart no better (BENCHMARKS.md); the vector search still reads
// the whole query. Small bases keep every term.
const (
	commonShare = 0.02
	commonFloor = 1000
	maxTerms    = 8
)

// discriminating returns terms, rarest first, without the common ones,
// by how many chunks of SQLite's full-text index hold them.
func (s *Store) discriminating(ctx context.Context, terms []string) ([]string, error) {
	var total float64
	if err := s.db.QueryRow(ctx, "SELECT coalesce(sum(chunks), 0) FROM knowledge_sources").Scan(&total); err != nil {
		return nil, err
	}
	limit := max(commonShare*total, commonFloor)
	// Counting stops past the limit, so a common term costs no more than
	// a rare one to tell apart.
	df := map[string]float64{}
	for _, t := range terms {
		var n float64
		err := s.db.QueryRow(ctx, `SELECT count(*) FROM (SELECT rowid FROM knowledge_fts WHERE knowledge_fts MATCH $1 LIMIT $2)`,
			`"`+strings.ReplaceAll(t, `"`, `""`)+`"`, int(limit)+1).Scan(&n)
		if err != nil {
			return nil, err
		}
		df[t] = n
	}
	sorted := slices.Clone(terms)
	sort.SliceStable(sorted, func(i, j int) bool { return df[sorted[i]] < df[sorted[j]] })
	keep := sorted[:0:0]
	for _, t := range sorted {
		if df[t] <= limit {
			keep = append(keep, t)
		}
	}
	return keep[:min(len(keep), maxTerms)], nil
}

func scanInt64(row scanner) (int64, error) {
	var v int64
	return v, row.Scan(&v)
}

// SetKnowledgeTitle sets the title the attempt claim found for its source
// (a web page's own title, for a URL source given without one).
func (s *Store) SetKnowledgeTitle(ctx context.Context, id, claim, title string) error {
	_, err := s.db.Exec(ctx, "UPDATE knowledge_sources SET title = $3 WHERE id = $1 AND claim = $2", id, claim, title)
	return err
}
