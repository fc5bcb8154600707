package bots

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"time"

	"github.com/wagate/wagate/knowledge"
	"github.com/wagate/wagate/store"
)

// Grounder finds a chatbot's knowledge for a turn (knowledge.Service).
type Grounder interface {
	Search(ctx context.Context, cb *store.Chatbot, query string, limit int) (*knowledge.SearchResult, error)
}

// ReasonHandoff is the reason of a session paused because the knowledge
// base had nothing for the customer's question.
const ReasonHandoff = "handoff: no knowledge"

// groundingPrompt tells the model how to use the passages that follow it.
const groundingPrompt = `Answer the customer from the knowledge base passages below. Each passage starts with its title.
Use only what they say for facts about the business; do not invent details they do not contain.
If the passages do not cover the question, say that you do not have that information instead of guessing.`

// UsedSource is a knowledge chunk a reply was grounded on, as stored with
// the bot's message.
type UsedSource struct {
	ChunkID    string  `json:"chunkId"`
	SourceID   string  `json:"sourceId"`
	Title      string  `json:"title"`
	Similarity float64 `json:"similarity"`
}

// grounding is what the knowledge base gave one turn.
type grounding struct {
	system  string          // the passages, for the model; "" when none
	sources json.RawMessage // UsedSource list for the stored reply
	none    bool            // the chatbot has knowledge but nothing matched
	set     knowledge.Settings
}

// ground retrieves the best chunks for the turn's text within the
// knowledge budget (a quarter of the history budget), best first.
func (c *chat) ground(ctx context.Context, br *brain, turn []*store.Message) (*grounding, error) {
	if br.chatbot == nil || c.e.cfg.Knowledge == nil {
		return nil, nil
	}
	var texts []string
	for _, m := range turn {
		if strings.TrimSpace(m.Text) != "" {
			texts = append(texts, m.Text)
		}
	}
	if len(texts) == 0 {
		return nil, nil
	}
	g := &grounding{set: knowledge.SettingsOf(br.chatbot)}
	res, err := c.e.cfg.Knowledge.Search(ctx, br.chatbot, strings.Join(texts, "\n"), 0)
	if err != nil {
		return nil, err
	}
	if len(res.Results) == 0 {
		g.none = true
		return g, nil
	}
	budget := max(c.e.cfg.HistoryTokens/4, 500)
	var (
		b    strings.Builder
		used []UsedSource
	)
	b.WriteString(groundingPrompt)
	for _, r := range res.Results {
		passage := "\n\n---\n" + r.Content()
		t := knowledge.EstimateTokens(passage)
		if t > budget && len(used) > 0 {
			break
		}
		budget -= t
		b.WriteString(passage)
		used = append(used, UsedSource{ChunkID: r.Chunk.ID, SourceID: r.Chunk.SourceID, Title: r.Chunk.Title,
			Similarity: math.Round(r.Similarity*10000) / 10000})
	}
	g.system = b.String()
	g.sources, _ = json.Marshal(used)
	return g, nil
}

// handOff pauses the session for a human, as an operator's message would,
// and reports it: the knowledge base had nothing for the question.
func (c *chat) handOff(ctx context.Context, b *bot, turn []*store.Message) error {
	now := time.Now()
	s := c.session
	s.Status, s.Reason, s.UpdatedAt, s.PausedUntil = store.SessionPaused, ReasonHandoff, now, time.Time{}
	if m := *b.eff.PauseMinutes; m > 0 {
		s.PausedUntil = now.Add(time.Duration(m) * time.Minute)
	}
	return c.e.outbox.Tx(ctx, func(ctx context.Context) error {
		if err := c.e.store.UpdateSession(ctx, s); err != nil {
			return err
		}
		c.sessionDirty = false
		if err := c.mark(ctx, turn, store.MessageIgnored, "handed to a human: the knowledge base has nothing on it", b.ID); err != nil {
			return err
		}
		return c.emit(ctx, EventSessionPaused, ReasonHandoff)
	})
}
