package knowledge

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	openai "github.com/sashabaranov/go-openai"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/fetch"
	"github.com/wagate/wagate/store"
)

// Config tunes a Service.
type Config struct {
	// NewClient returns the provider client of a credential.
	NewClient func(*store.Creds) *openai.Client
	// Workers bounds the sources ingested at once, so that extraction and
	// embedding never take the processor or the provider's rate limit
	// from message handling. 0 means 2.
	Workers int
	// MaxFetchBytes bounds a URL source's page; 0 means 25 MiB.
	MaxFetchBytes int64
	// Limits per organization.
	Limits store.KnowledgeLimits
	// Lease is how long a job's claim holds without renewal; a job whose
	// worker died is taken up again after it. 0 means a minute.
	Lease time.Duration
	// Poll is how often idle workers look for jobs another replica queued
	// (jobs queued here wake them at once). 0 means 5 s.
	Poll time.Duration
	// RetryBase is the first delay between embedding attempts.
	RetryBase time.Duration
	// MaxAttempts is how many interrupted attempts a job gets before it is
	// failed (a file that crashes the process must not loop). 0 means 3.
	MaxAttempts int
}

// Service is the knowledge base: ingestion workers and search.
type Service struct {
	st      *store.Store
	fetch   *fetch.Client
	cfg     Config
	log     *slog.Logger
	indexes indexes

	kick   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns the service; Start runs its workers.
func New(st *store.Store, f *fetch.Client, cfg Config, log *slog.Logger) *Service {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.MaxFetchBytes <= 0 {
		cfg.MaxFetchBytes = 25 << 20
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 5 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	return &Service{st: st, fetch: f, cfg: cfg, log: log, indexes: indexes{st: st}, kick: make(chan struct{}, 1)}
}

// Limits are the per-organization limits the service enforces.
func (s *Service) Limits() store.KnowledgeLimits { return s.cfg.Limits }

// Settings are a chatbot's knowledge settings, defaults applied.
type Settings struct {
	EmbeddingModel  string
	Dimensions      int
	TopK            int
	MinSimilarity   float64
	Fallback        string // FallbackAnswer, FallbackMessage or FallbackHandoff
	FallbackMessage string
}

// What a chatbot does when nothing relevant is found for a turn.
const (
	FallbackAnswer  = "answer"  // answer anyway, from the model's general knowledge
	FallbackMessage = "message" // send knowledgeFallbackMessage
	FallbackHandoff = "handoff" // hand the chat to a human
)

// Settings keys of a chatbot's knowledge base.
const (
	KeyEmbeddingModel      = "embeddingModel"
	KeyEmbeddingDimensions = "embeddingDimensions"
	KeyTopK                = "knowledgeTopK"
	KeyMinSimilarity       = "knowledgeMinSimilarity"
	KeyFallback            = "knowledgeFallback"
	KeyFallbackMessage     = "knowledgeFallbackMessage"
)

// SettingsOf reads cb's knowledge settings.
func SettingsOf(cb *store.Chatbot) Settings {
	set := Settings{EmbeddingModel: DefaultEmbeddingModel, Dimensions: DefaultDimensions, TopK: DefaultTopK,
		MinSimilarity: DefaultMinSimilarity, Fallback: FallbackAnswer}
	if v := cb.Setting(KeyEmbeddingModel); v != "" {
		set.EmbeddingModel = v
	}
	if v, ok := number(cb.Settings[KeyEmbeddingDimensions]); ok && v >= 0 {
		set.Dimensions = int(v)
	}
	if v, ok := number(cb.Settings[KeyTopK]); ok && v >= 1 {
		set.TopK = min(int(v), MaxTopK)
	}
	if v, ok := number(cb.Settings[KeyMinSimilarity]); ok {
		set.MinSimilarity = v
	}
	if v := cb.Setting(KeyFallback); v != "" {
		set.Fallback = v
	}
	set.FallbackMessage = cb.Setting(KeyFallbackMessage)
	return set
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case string:
		f, err := strconv.ParseFloat(n, 64)
		return f, err == nil
	}
	return 0, false
}

// Creds returns the credentials cb's model calls use: its
// settings.openaiCredsId, else its own OpenAI key, else its
// organization's default credentials; nil when it has none.
func (s *Service) Creds(ctx context.Context, cb *store.Chatbot) (*store.Creds, error) {
	switch {
	case cb.CredsID != "":
		return s.st.OrgCreds(ctx, cb.OrganizationID, cb.CredsID)
	case cb.OpenAIKey != "":
		return &store.Creds{ID: "chatbot:" + cb.ID, OrganizationID: cb.OrganizationID, APIKey: cb.OpenAIKey}, nil
	}
	c, err := s.st.DefaultCreds(ctx, cb.OrganizationID)
	if wagate.ErrorCode(err) == wagate.ENOTFOUND {
		return nil, nil
	}
	return c, err
}

// Embedder returns cb's embedder, or nil and the reason when it has no
// embedding model (no credentials, or embeddingModel "none").
func (s *Service) Embedder(ctx context.Context, cb *store.Chatbot) (*Embedder, string, error) {
	set := SettingsOf(cb)
	if set.EmbeddingModel == "none" {
		return nil, "the chatbot's embeddingModel is none", nil
	}
	c, err := s.Creds(ctx, cb)
	if err != nil {
		return nil, "", err
	}
	if c == nil || s.cfg.NewClient == nil {
		return nil, "the chatbot has no credentials for an embedding model", nil
	}
	return &Embedder{Client: s.cfg.NewClient(c), Model: set.EmbeddingModel, Dimensions: set.Dimensions, RetryBase: s.cfg.RetryBase}, "", nil
}

// Kick wakes the workers: a source was queued.
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Start runs the ingestion workers until Stop; jobs left by a previous run
// (pending, or processing with an expired lease) are taken up.
func (s *Service) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	for range s.cfg.Workers {
		s.wg.Go(func() { s.work(ctx) })
	}
	s.Kick()
}

// Stop stops the workers; a job under way is released for the next start.
func (s *Service) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

func (s *Service) work(ctx context.Context) {
	for ctx.Err() == nil {
		k, err := s.st.ClaimKnowledgeJob(ctx, s.cfg.Lease)
		if err != nil && ctx.Err() == nil {
			s.log.Error("claiming a knowledge job", "error", err)
		}
		if k == nil {
			select {
			case <-ctx.Done():
				return
			case <-s.kick:
			case <-time.After(s.cfg.Poll):
			}
			continue
		}
		s.Kick() // another worker may take the next job
		s.run(ctx, k)
	}
}

// run processes one claimed job, renewing its lease while it works.
func (s *Service) run(ctx context.Context, k *store.KnowledgeSource) {
	log := s.log.With("source", k.ID, "chatbot", k.ChatbotID, "type", k.Type, "attempt", k.Attempts)
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	renewed := make(chan struct{})
	var disowned bool // set by the renewer before it cancels jctx
	go func() {
		defer close(renewed)
		t := time.NewTicker(s.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-jctx.Done():
				return
			case <-t.C:
				ok, err := s.st.RenewKnowledgeLease(jctx, k.ID, k.Claim, s.cfg.Lease)
				if err == nil && !ok {
					log.Info("knowledge source changed while processed; dropping this attempt")
					disowned = true
					cancel()
					return
				}
			}
		}
	}()
	start := time.Now()
	err := s.ingest(jctx, k)
	cancel()
	<-renewed
	bg := context.WithoutCancel(ctx)
	switch {
	case err == nil:
		log.Info("knowledge source ready", "duration", time.Since(start))
	case store.IsDisowned(err), disowned:
	case ctx.Err() != nil:
		// Shutting down: the next start takes the job up again.
		if err := s.st.ReleaseKnowledgeJob(bg, k.ID, k.Claim); err != nil {
			log.Warn("releasing a knowledge job", "error", err)
		}
	default:
		reason := userReason(err)
		log.Info("knowledge source failed", "reason", reason, "error", err)
		if err := s.st.FailKnowledgeSource(bg, k.ID, k.Claim, reason); err != nil {
			log.Error("marking a knowledge source failed", "error", err)
		}
	}
}

// userReason words err for the source's owner; errors the user cannot act
// on are not described.
func userReason(err error) string {
	var ue *UserError
	if errors.As(err, &ue) {
		return ue.Reason
	}
	var we *wagate.Error
	if errors.As(err, &we) && len(we.Messages) > 0 {
		msg := strings.TrimPrefix(we.Messages[0], "url: ")
		return strings.Replace(msg, "the server answered", "the page answered", 1)
	}
	return "an internal error stopped the ingestion; edit the source to try again"
}

// ingest makes chunks of k and stores them.
func (s *Service) ingest(ctx context.Context, k *store.KnowledgeSource) error {
	if k.Attempts > s.cfg.MaxAttempts {
		return &UserError{"its ingestion was interrupted " + strconv.Itoa(k.Attempts-1) + " times; edit the source to try again"}
	}
	cb, err := s.st.Chatbot(ctx, k.OrganizationID, k.ChatbotID)
	if err != nil {
		return err
	}
	pieces, err := s.pieces(ctx, k)
	if err != nil {
		return err
	}
	chunks := make([]store.KnowledgeChunk, len(pieces))
	texts := make([]string, len(pieces))
	for i, p := range pieces {
		chunks[i] = store.KnowledgeChunk{ID: uuid.NewString(), Position: p.Position, Heading: p.Heading, Content: p.Text, Tokens: p.Tokens}
		// The title and headings are embedded with the passage: they are
		// often what a question names.
		texts[i] = k.Title + "\n" + p.Heading + "\n" + p.Text
	}
	note := ""
	emb, reason, err := s.Embedder(ctx, cb)
	if err != nil {
		return err
	}
	if emb != nil {
		vecs, err := emb.Embed(ctx, texts)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			reason = err.Error()
		}
		for i := range vecs {
			chunks[i].Embedding = vecs[i]
		}
	}
	if reason != "" {
		note = "searchable by full text only: " + reason
	}
	return s.st.CompleteKnowledgeSource(ctx, k, chunks, note, s.cfg.Limits.MaxChunks)
}

// pieces extracts k's text and cuts it into chunks.
func (s *Service) pieces(ctx context.Context, k *store.KnowledgeSource) ([]Piece, error) {
	switch k.Type {
	case store.SourceQA:
		return qaPieces(k.Title, k.Body), nil
	case store.SourceText:
		return Chunk(ParseMarkdown(k.Body), DefaultChunkOptions), nil
	case store.SourceFile:
		doc, err := Extract(Format(k.ContentType), k.Data, "")
		if err != nil {
			return nil, err
		}
		return Chunk(doc, DefaultChunkOptions), nil
	case store.SourceURL:
		resp, err := s.fetch.Get(ctx, "url", k.URL, s.cfg.MaxFetchBytes)
		if err != nil {
			return nil, err
		}
		f, ok := Detect(resp.URL, resp.Body)
		if strings.Contains(resp.ContentType, "html") {
			f, ok = FormatHTML, true
		}
		if !ok {
			return nil, userErrorf("the page is %s, not a document the knowledge base reads", resp.Sniffed)
		}
		doc, err := Extract(f, resp.Body, resp.URL)
		if err != nil {
			return nil, err
		}
		if doc.Title != "" && k.Title == k.URL {
			k.Title = doc.Title
			if err := s.st.SetKnowledgeTitle(ctx, k.ID, k.Claim, doc.Title); err != nil {
				return nil, err
			}
		}
		return Chunk(doc, DefaultChunkOptions), nil
	}
	return nil, userErrorf("unknown source type %q", k.Type)
}

// qaPieces makes a question-and-answer pair one chunk, or, for a long
// answer, several that each repeat the question.
func qaPieces(question, answer string) []Piece {
	head := "Question: " + collapse(question) + "\nAnswer: "
	parts := []string{strings.TrimSpace(answer)}
	if EstimateTokens(head+answer) > DefaultChunkOptions.Max {
		parts = splitLong(collapse(answer), DefaultChunkOptions.Max-EstimateTokens(head))
	}
	out := make([]Piece, len(parts))
	for i, p := range parts {
		text := head + p
		out[i] = Piece{Position: i + 1, Text: text, Tokens: EstimateTokens(text)}
	}
	return out
}

// Forget drops what the service holds in memory for a deleted chatbot.
func (s *Service) Forget(chatbotID string) { s.indexes.drop(chatbotID) }
