package bots

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
)

// Event names the engine emits (Evolution style; subscription names
// OPENAI_SESSION_OPENED, …).
const (
	EventSessionOpened = "openai.session.opened"
	EventSessionPaused = "openai.session.paused"
	EventSessionClosed = "openai.session.closed"
	EventError         = "openai.error"
)

// Reasons recorded on sessions and in events.
const (
	ReasonTrigger      = "trigger"
	ReasonFallback     = "fallback"
	ReasonKeyword      = "keyword"
	ReasonExpire       = "expire"
	ReasonOperator     = "operator"
	ReasonPauseExpired = "pause expired"
)

// bot is a bot with its compiled trigger and effective configuration.
type bot struct {
	*store.Bot
	trigger *Trigger
	eff     Effective
}

// chat is one conversation as the engine sees it while deciding.
type chat struct {
	e        *Engine
	cfg      *instanceConfig // shared: inst, settings and bots are read-only
	inst     *store.Instance
	jid      string // the conversation key: sessions are kept under it
	replyTo  string // the chat as the channel named it in the latest message
	settings *store.OpenAISettings
	bots     []*bot
	session  *store.Session // the live session, if any
	log      *slog.Logger

	// sessionDirty says the session has activity not saved yet; the
	// transaction that records the turn, or step before a debounce wait,
	// saves it.
	sessionDirty bool
	// pending are the chat's undecided messages as loaded.
	pending []*store.Message
	// parts are the chat's reply parts not sent yet, in order: they go
	// out before anything newer is decided.
	parts []*store.ReplyPart
	// history is the history of session historyOf as loaded ("" when not
	// loaded, or changed since).
	history   []*store.Turn
	historyOf string
	// streamed says text of this turn went to a waiting visitor.
	streamed bool
}

// loadChat reads what deciding on a chat needs. It returns nil when the
// instance no longer exists (its messages went with it).
func (e *Engine) loadChat(ctx context.Context, instanceID, jid string) (*chat, error) {
	cfg, err := e.config(ctx, instanceID)
	if err != nil || cfg == nil {
		return nil, err
	}
	c := &chat{e: e, cfg: cfg, inst: cfg.inst, jid: jid, settings: cfg.settings, bots: cfg.bots,
		log: e.log.With("instance", cfg.inst.Name, "chat", jid)}
	st, err := e.store.ChatState(ctx, instanceID, jid, e.cfg.HistoryTokens)
	if err != nil {
		return nil, err
	}
	c.session, c.parts, c.pending = st.Session, st.Parts, st.Pending
	if c.session != nil && len(c.pending) > 0 {
		c.history, c.historyOf = st.History, c.session.ID
	}
	return c, nil
}

func (c *chat) bot(id string) *bot {
	for _, b := range c.bots {
		if b.ID == id {
			return b
		}
	}
	return nil
}

// settingsEff is the settings' behaviour, complete.
func (c *chat) settingsEff() store.Behaviour {
	return Inherit(c.settings.Behaviour, DefaultBehaviour())
}

// decision is what becomes of one inbound message.
type decision struct {
	join   bool   // part of the next model turn
	drop   bool   // ends the turn being gathered (takeover or keyword)
	reason string // why it is not answered
	botID  string
}

func ignore(reason string) decision { return decision{reason: reason} }

// ignoredTypes are message kinds no bot answers.
var ignoredTypes = []string{"reactionMessage", "protocolMessage", "editedMessage", "pollUpdateMessage", "senderKeyDistributionMessage"}

// decide applies the ignore rules, human handoff, sessions and triggers to
// one message, in arrival order.
func (c *chat) decide(ctx context.Context, m *store.Message, now time.Time) (decision, error) {
	c.replyTo = m.RemoteJID
	switch {
	case m.IgnoreReason != "":
		return ignore(m.IgnoreReason), nil
	case m.RemoteJID == "status@broadcast":
		return ignore("status broadcast"), nil
	case strings.HasSuffix(m.RemoteJID, "@newsletter"):
		return ignore("newsletter"), nil
	case slices.Contains(ignoredTypes, m.MessageType):
		return ignore(m.MessageType), nil
	case jidListed(c.settings.IgnoreJids, m.RemoteJID) || jidListed(c.settings.IgnoreJids, c.jid):
		return ignore("ignoreJids of the settings"), nil
	}
	if m.FromMe {
		own, err := c.e.store.IsOutbound(ctx, c.inst.ID, m.ID)
		if err != nil {
			return decision{}, err
		}
		if own {
			return ignore("sent by the gateway"), nil
		}
		return c.operator(ctx, m, now)
	}
	if c.session != nil {
		return c.inSession(ctx, m, now)
	}
	text, d, err := c.text(ctx, m, *c.settingsEff().SpeechToText, nil)
	if err != nil || d != nil {
		return orDecision(d), err
	}
	b, reason, err := c.match(ctx, m, text)
	if err != nil {
		return decision{}, err
	}
	if b == nil {
		return ignore(reason), nil
	}
	if keywordFinish(b.eff, text) {
		return ignore("keywordFinish without a session"), nil
	}
	if err := c.open(ctx, b, m.PushName, reason, now); err != nil {
		return decision{}, err
	}
	return decision{join: true, botID: b.ID}, nil
}

func orDecision(d *decision) decision {
	if d == nil {
		return decision{}
	}
	return *d
}

// inSession decides on a customer message in a chat with a live session:
// the session's bot answers, without triggers.
func (c *chat) inSession(ctx context.Context, m *store.Message, now time.Time) (decision, error) {
	b := c.bot(c.session.BotID)
	switch {
	case b == nil: // deleted since the chat was loaded; its session goes with it
		return ignore("bot deleted"), nil
	case c.session.Status == store.SessionPaused:
		return decision{reason: "session paused: a human is answering", botID: b.ID}, nil
	case !b.Enabled:
		return decision{reason: "bot disabled", botID: b.ID}, nil
	case jidListed(b.IgnoreJids, m.RemoteJID) || jidListed(b.IgnoreJids, c.jid):
		return decision{reason: "ignoreJids of the bot", botID: b.ID}, nil
	case !c.groupAllowed(ctx, b, m):
		return decision{reason: groupReason(b), botID: b.ID}, nil
	}
	text, d, err := c.text(ctx, m, *b.eff.SpeechToText, b)
	if err != nil || d != nil {
		return orDecision(d), err
	}
	if keywordFinish(b.eff, text) {
		if err := c.close(ctx, ReasonKeyword, now); err != nil {
			return decision{}, err
		}
		return decision{drop: true, reason: "keywordFinish: session closed", botID: b.ID}, nil
	}
	c.session.UpdatedAt = now
	if c.session.PushName == "" {
		c.session.PushName = m.PushName
	}
	// Saved with the turn's answer (or before a debounce wait): one write
	// less per message.
	c.sessionDirty = true
	return decision{join: true, botID: b.ID}, nil
}

// operator decides on a message typed on the instance's own account by a
// person (not sent by the gateway).
func (c *chat) operator(ctx context.Context, m *store.Message, now time.Time) (decision, error) {
	if c.session == nil {
		// An operator never starts a session unless the bot listens to
		// them; then their message opens it as the bot's own turn.
		b, reason, err := c.match(ctx, m, m.Text)
		if err != nil {
			return decision{}, err
		}
		if b == nil || !*b.eff.ListeningFromMe {
			return ignore("operator message"), nil
		}
		if err := c.open(ctx, b, "", reason, now); err != nil {
			return decision{}, err
		}
		return c.operatorHistory(ctx, b, m, now)
	}
	b := c.bot(c.session.BotID)
	switch {
	case b == nil:
		return ignore("operator message"), nil
	case *b.eff.StopBotFromMe:
		if err := c.pause(ctx, *b.eff.PauseMinutes, now); err != nil {
			return decision{}, err
		}
		return decision{drop: true, reason: "operator took over", botID: b.ID}, nil
	case *b.eff.ListeningFromMe:
		return c.operatorHistory(ctx, b, m, now)
	}
	return decision{reason: "operator message", botID: b.ID}, nil
}

// operatorHistory adds an operator's message to the session's history as
// the assistant's turn, so the bot knows what was said for it.
func (c *chat) operatorHistory(ctx context.Context, b *bot, m *store.Message, now time.Time) (decision, error) {
	if m.Text != "" {
		msg := openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: m.Text}
		if err := c.e.store.AppendTurns(ctx, turnOf(c.session.ID, msg, 0, now)); err != nil {
			return decision{}, err
		}
		c.historyOf = ""
	}
	c.session.UpdatedAt = now
	if err := c.e.store.UpdateSession(ctx, c.session); err != nil {
		return decision{}, err
	}
	return decision{reason: "operator message, added to the history", botID: b.ID}, nil
}

// match picks the bot whose trigger fits text: highest priority, then the
// most specific trigger, then the oldest; else the settings' fallback. With
// no bot it returns why. It stops with ctx's error when the engine is
// stopping: each trigger's cost is bounded, but an instance may have many
// bots, and shutdown should not wait for all of them (the message stays
// pending and is decided after the restart).
func (c *chat) match(ctx context.Context, m *store.Message, text string) (*bot, string, error) {
	var best *bot
	why := "no bot trigger matched"
	tx := NewText(text)
	for _, b := range c.bots {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		if !b.Enabled || !b.trigger.MatchText(tx) {
			continue
		}
		if jidListed(b.IgnoreJids, m.RemoteJID) || jidListed(b.IgnoreJids, c.jid) {
			why = "ignoreJids of the bot"
			continue
		}
		if !c.groupAllowed(ctx, b, m) {
			why = groupReason(b)
			continue
		}
		if best == nil || b.Priority > best.Priority ||
			(b.Priority == best.Priority && b.trigger.Rank() < best.trigger.Rank()) {
			best = b // bots are listed oldest first, so ties keep the oldest
		}
	}
	if best != nil {
		return best, ReasonTrigger, nil
	}
	if fb := c.bot(c.settings.FallbackID); fb != nil && fb.Enabled && strings.TrimSpace(text) != "" &&
		!jidListed(fb.IgnoreJids, m.RemoteJID) && !jidListed(fb.IgnoreJids, c.jid) && c.groupAllowed(ctx, fb, m) {
		return fb, ReasonFallback, nil
	}
	return nil, why, nil
}

// groupAllowed applies the bot's groupMode to a group message: off never
// answers, mention only when the message mentions the instance or replies
// to one of its messages, all always.
func (c *chat) groupAllowed(ctx context.Context, b *bot, m *store.Message) bool {
	if !strings.HasSuffix(m.RemoteJID, "@g.us") {
		return true
	}
	switch *b.eff.GroupMode {
	case GroupAll:
		return true
	case GroupMention:
		if m.MentionsMe {
			return true
		}
		if m.QuotedID != "" {
			ours, err := c.e.store.IsOutbound(ctx, c.inst.ID, m.QuotedID)
			return err == nil && ours
		}
	}
	return false
}

func groupReason(b *bot) string {
	if *b.eff.GroupMode == GroupOff {
		return "group messages are off for the bot"
	}
	return "group message without a mention or reply"
}

// jidListed applies an ignoreJids list: "@g.us", "@s.whatsapp.net", "@lid"
// (any entry starting with @) match every chat of that kind, anything else
// exactly one chat.
func jidListed(list []string, jid string) bool {
	for _, entry := range list {
		if entry == jid || (strings.HasPrefix(entry, "@") && strings.HasSuffix(jid, entry)) {
			return true
		}
	}
	return false
}

func keywordFinish(eff Effective, text string) bool {
	k := Normalize(*eff.KeywordFinish)
	return k != "" && Normalize(text) == k
}

// ---- session changes, each reported in the same transaction

func (c *chat) emit(ctx context.Context, event, reason string) error {
	s := c.session
	return c.e.outbox.Emit(ctx, c.inst, event, map[string]string{
		"sessionId": s.ID, "botId": s.BotID, "remoteJid": s.RemoteJID, "pushName": s.PushName,
		"status": s.Status, "reason": reason,
	})
}

func (c *chat) open(ctx context.Context, b *bot, pushName, reason string, now time.Time) error {
	s := &store.Session{
		ID: store.NewID(), InstanceID: c.inst.ID, BotID: b.ID, RemoteJID: c.jid, PushName: pushName,
		Status: store.SessionOpened, Reason: reason, CreatedAt: now, UpdatedAt: now,
	}
	return c.e.outbox.Tx(ctx, func(ctx context.Context) error {
		if err := c.e.store.CreateSession(ctx, s); err != nil {
			return err
		}
		c.session = s
		c.history, c.historyOf = nil, s.ID // a new session has no history
		return c.emit(ctx, EventSessionOpened, reason)
	})
}

// close ends the live session: kept as closed when the bot's keepOpen says
// so, deleted with its history otherwise. Either way the chat can start a
// new session with its next triggering message.
func (c *chat) close(ctx context.Context, reason string, now time.Time) error {
	s := c.session
	b := c.bot(s.BotID)
	s.Status, s.CloseReason, s.ClosedAt, s.UpdatedAt, s.PausedUntil = store.SessionClosed, reason, now, now, time.Time{}
	s.Reason = reason
	err := c.e.outbox.Tx(ctx, func(ctx context.Context) error {
		var err error
		if b != nil && *b.eff.KeepOpen {
			err = c.e.store.UpdateSession(ctx, s)
		} else {
			err = c.e.store.DeleteSession(ctx, c.inst.ID, s.ID)
		}
		if err != nil {
			return err
		}
		return c.emit(ctx, EventSessionClosed, reason)
	})
	c.session = nil
	return err
}

// pause holds the bot while a human answers: for minutes after this
// operator message, or until reopened through the API when minutes is 0.
func (c *chat) pause(ctx context.Context, minutes int, now time.Time) error {
	s := c.session
	wasOpen := s.Status == store.SessionOpened
	s.Status, s.Reason, s.UpdatedAt, s.PausedUntil = store.SessionPaused, ReasonOperator, now, time.Time{}
	if minutes > 0 {
		s.PausedUntil = now.Add(time.Duration(minutes) * time.Minute)
	}
	return c.e.outbox.Tx(ctx, func(ctx context.Context) error {
		if err := c.e.store.UpdateSession(ctx, s); err != nil {
			return err
		}
		if !wasOpen {
			return nil // a further operator message only extends the pause
		}
		return c.emit(ctx, EventSessionPaused, ReasonOperator)
	})
}

// checkExpiry closes a session idle for longer than its bot's expire and
// resumes one whose pause has run out. It reports whether it changed it.
func (c *chat) checkExpiry(ctx context.Context, now time.Time) (bool, error) {
	s := c.session
	if s == nil {
		return false, nil
	}
	b := c.bot(s.BotID)
	if b == nil {
		return false, nil
	}
	if exp := *b.eff.Expire; exp > 0 && now.Sub(s.UpdatedAt) > time.Duration(exp)*time.Minute {
		return true, c.close(ctx, ReasonExpire, now)
	}
	if s.Status == store.SessionPaused && !s.PausedUntil.IsZero() && now.After(s.PausedUntil) {
		s.Status, s.Reason, s.PausedUntil = store.SessionOpened, ReasonPauseExpired, time.Time{}
		return true, c.e.outbox.Tx(ctx, func(ctx context.Context) error {
			if err := c.e.store.UpdateSession(ctx, s); err != nil {
				return err
			}
			return c.emit(ctx, EventSessionOpened, ReasonPauseExpired)
		})
	}
	return false, nil
}

// mark records the outcome of messages.
func (c *chat) mark(ctx context.Context, msgs []*store.Message, state, reason, botID string) error {
	seqs := make([]int64, len(msgs))
	for i, m := range msgs {
		seqs[i] = m.Seq
	}
	sessionID := ""
	if c.session != nil && c.session.BotID == botID {
		sessionID = c.session.ID
	}
	return c.e.store.SetMessagesState(ctx, c.inst.ID, seqs, store.MessageOutcome{
		State: state, Reason: reason, BotID: botID, SessionID: sessionID,
	})
}

// text returns what a message says to bots: its text or caption, or for
// audio its transcript when speech-to-text is on (b is the session's bot,
// nil before one is chosen). A decision is returned when the message cannot
// be used.
func (c *chat) text(ctx context.Context, m *store.Message, speechToText bool, b *bot) (string, *decision, error) {
	if m.MessageType != "audioMessage" || m.Text != "" {
		return m.Text, nil, nil
	}
	if !speechToText {
		d := ignore("audio message: speech-to-text is off")
		return "", &d, nil
	}
	creds, err := c.transcriptionCreds(ctx, b)
	var transcript string
	if err == nil {
		transcript, err = c.e.transcribe(ctx, c.inst, m, creds)
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", nil, ctx.Err()
		}
		c.log.Warn("transcription failed", "message", m.ID, "error", wagate.ErrorMessages(err))
		d := ignore("transcription failed")
		if msg := c.settings.TranscriptionErrorMessage; msg != "" {
			if err := c.tellTranscriptionFailed(ctx, m, b, msg, d.reason); err != nil {
				return "", nil, err
			}
		}
		return "", &d, nil
	}
	m.Text = transcript
	if err := c.e.store.SetMessageText(ctx, c.inst.ID, m.Seq, transcript); err != nil {
		return "", nil, err
	}
	return transcript, nil, nil
}

// recentTurns returns the session's history within the token budget.
func (c *chat) recentTurns(ctx context.Context) ([]*store.Turn, error) {
	if c.historyOf != "" && c.historyOf == c.session.ID {
		return c.history, nil
	}
	return c.e.store.RecentTurns(ctx, c.session.ID, c.e.cfg.HistoryTokens)
}

// transcriptionCreds picks the credentials to transcribe with: the brain's
// of the session's bot (a chatbot's, for a bot that answers as one), else
// the settings' default, else those of the first enabled bot that has any.
func (c *chat) transcriptionCreds(ctx context.Context, b *bot) (*store.Creds, error) {
	if b == nil {
		if c.settings.CredsID != "" {
			return c.e.credsFor(ctx, c.cfg, c.settings.CredsID)
		}
		for _, cand := range c.bots {
			if cand.Enabled && (cand.eff.CredsID != "" || cand.ChatbotID != "") {
				b = cand
				break
			}
		}
	}
	if b == nil || (b.ChatbotID == "" && b.eff.CredsID == "") {
		return nil, wagate.Errorf(wagate.EUNPROCESSABLE, "speech-to-text: no credentials to transcribe with")
	}
	br, err := c.brainFor(ctx, b)
	if err != nil {
		return nil, err
	}
	return br.creds, nil
}

// tellTranscriptionFailed sends msg about the audio message m that could
// not be transcribed. Like a bot's reply it is stored, with m marked
// decided, before it goes out: a restart neither sends it twice nor
// transcribes m again.
func (c *chat) tellTranscriptionFailed(ctx context.Context, m *store.Message, b *bot, msg, reason string) error {
	part := &store.ReplyPart{InstanceID: c.inst.ID, ChatKey: c.jid, RemoteJID: c.replyTo, TurnSeq: m.Seq, Text: msg,
		CreatedAt: time.Now()}
	botID := ""
	if b != nil {
		botID, part.BotID = b.ID, b.ID
		if c.session != nil && c.session.BotID == b.ID {
			part.SessionID = c.session.ID
		}
	}
	var k kept
	err := c.e.outbox.Tx(ctx, func(ctx context.Context) error {
		if err := c.fence(ctx); err != nil {
			return err
		}
		var err error
		if k, err = c.keep(ctx, []*store.ReplyPart{part}); err != nil {
			return err
		}
		return c.mark(ctx, []*store.Message{m}, store.MessageIgnored, reason, botID)
	})
	if err != nil {
		return err
	}
	return c.sendKept(ctx, k)
}
