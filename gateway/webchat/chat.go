package webchat

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/store"
)

// Platforms of web chat conversations: the widget and hosted page (web),
// or a caller of the chat API that says so (api).
const (
	PlatformWeb = "web"
	PlatformAPI = "api"
)

// Texts of the lead capture, told by the chatbot itself.
const (
	LeadAsk     = "Before we start, could you tell me your email address?"
	LeadInvalid = "That does not look like an email address. Could you check it and send it again?"
	LeadThanks  = "Thank you! How can I help you today?"
)

// MaxImageBytes caps an image attached to a message.
const MaxImageBytes = 4 << 20

// Turn is one visitor message to answer.
type Turn struct {
	Platform string // PlatformWeb or PlatformAPI
	Visitor  string // the caller's session token, or the widget's visitor id
	Text     string
	ImageURL string // an http(s) URL or a data: URL; "" for none
}

// ChatKey is the conversation key of a visitor: platform and token.
func ChatKey(platform, visitor string) string { return platform + ":" + visitor }

// SplitChatKey returns the platform and visitor of a web chat key.
func SplitChatKey(key string) (platform, visitor string) {
	platform, visitor, _ = strings.Cut(key, ":")
	return platform, visitor
}

var visitorPattern = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)

// ValidVisitor tells whether s may name a visitor: 1–128 printable ASCII
// characters without spaces.
func ValidVisitor(s string) bool { return visitorPattern.MatchString(s) }

// image is a fetched or decoded attachment.
type image struct {
	mime string
	data []byte
}

var imageTypes = map[string]string{"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}

// image resolves a turn's image reference: a data URL is decoded, an
// http(s) URL fetched (SSRF-safe); both are size-capped and must be a PNG,
// JPEG, WebP or GIF by their bytes.
func (ch *Channel) image(ctx context.Context, field, ref string) (*image, error) {
	var data []byte
	if rest, ok := strings.CutPrefix(ref, "data:"); ok {
		_, b64, ok := strings.Cut(rest, ";base64,")
		if !ok {
			return nil, wagate.Invalid(field, "a data URL must be base64: data:image/png;base64,…")
		}
		if base64.StdEncoding.DecodedLen(len(b64)) > MaxImageBytes+3 {
			return nil, wagate.FieldError(wagate.ETOOLARGE, field, "images are limited to 4 MiB")
		}
		var err error
		if data, err = base64.StdEncoding.DecodeString(b64); err != nil {
			return nil, wagate.Invalid(field, "the data URL is not valid base64")
		}
	} else {
		resp, err := ch.fetch.Get(ctx, field, ref, MaxImageBytes)
		if err != nil {
			return nil, err
		}
		data = resp.Body
	}
	mime := http.DetectContentType(data)
	if _, ok := imageTypes[mime]; !ok {
		return nil, wagate.Invalid(field, "must be a PNG, JPEG, WebP or GIF image; this is "+mime)
	}
	return &image{mime: mime, data: data}, nil
}

// AttachmentURL is where an image a visitor attached to message id is
// shown.
func (ch *Channel) AttachmentURL(chatbotID, messageID string) string {
	return strings.TrimRight(ch.cfg.ServerURL, "/") + "/api/public/chatbots/" + chatbotID + "/attachments/" + messageID
}

// inbound is a turn as the message the channel receives.
func (ch *Channel) inbound(cb *store.Chatbot, key string, t Turn, img *image) (bots.Inbound, json.RawMessage) {
	in := bots.Inbound{
		MessageID: store.NewID(), ChatJID: key, SenderJID: key, MessageType: "conversation", Text: t.Text,
		Timestamp: time.Now().UTC().Truncate(time.Millisecond),
	}
	content := map[string]any{"conversation": t.Text}
	if img != nil {
		name := "image." + imageTypes[img.mime]
		in.MessageType = "imageMessage"
		in.Media = &bots.Media{Kind: "image", Mimetype: img.mime, Size: int64(len(img.data)), FileName: name}
		content = map[string]any{
			"imageMessage": map[string]any{"caption": t.Text, "mimetype": img.mime, "fileName": name,
				"base64": base64.StdEncoding.EncodeToString(img.data)},
			"attachments": []map[string]string{{"name": name, "url": ch.AttachmentURL(cb.ID, in.MessageID)}},
		}
	}
	raw, _ := json.Marshal(content)
	return in, raw
}

// Serve answers one turn of the visitor's conversation with the chatbot:
// the conversation is found or opened (with the greeting), the message
// stored and handed to the engine, and the answer written as it comes, as
// server-sent events when stream is set, as one JSON object otherwise.
func (ch *Channel) Serve(c echo.Context, cb *store.Chatbot, t Turn, stream bool) error {
	ctx := c.Request().Context()
	if !cb.Active {
		return wagate.FieldError(wagate.EUNPROCESSABLE, "chatbotId", "the chatbot is inactive (active: false) and does not answer")
	}
	var img *image
	if t.ImageURL != "" {
		var err error
		if img, err = ch.image(ctx, "messages.attachments", t.ImageURL); err != nil {
			return err
		}
	}
	inst, bot, err := ch.instance(ctx, cb)
	if err != nil {
		return err
	}
	key := ChatKey(t.Platform, t.Visitor)
	id := chatID(inst.ID, key)
	unlock, err := ch.hub.lock(ctx, id)
	if err != nil {
		return nil // the visitor went away while an earlier turn was answered
	}
	if ch.cfg.LockChat != nil {
		local := unlock
		shared, err := ch.cfg.LockChat(ctx, inst.ID, key)
		if err != nil {
			local()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		unlock = func() { shared(); local() }
	}
	handed := false
	defer func() {
		if !handed {
			unlock()
		}
	}()
	se, err := ch.conversation(ctx, cb, inst, bot, key)
	if err != nil {
		return err
	}
	in, content := ch.inbound(cb, key, t, img)
	if se.Status == store.SessionPaused {
		// A person answers: the message is stored in the session as the
		// engine would decide it, but decided here, so that a hand-back
		// right after cannot have the bot answer it late. The person's
		// replies reach the visitor's event stream.
		err := ch.host.ReceiveDecided(ctx, inst, in, content, store.MessageOutcome{State: store.MessageIgnored,
			Reason: "session paused: a human is answering", BotID: bot.ID, SessionID: se.ID})
		if err != nil {
			return err
		}
		return ch.human(c, se, stream)
	}
	lead, err := ch.needsLead(ctx, cb, t)
	if err != nil {
		return err
	}
	w := newWaiter(ctx)
	ch.hub.wait(id, w, ch.cfg.Wait, unlock)
	handed = true
	if lead {
		err = ch.captureLead(ctx, cb, inst, bot, se, t, in, content)
	} else {
		err = ch.host.Receive(ctx, inst, in, content)
	}
	if err != nil {
		w.push(event{kind: EventError}, true) // frees the chat
		return err
	}
	return ch.respond(c, w, se, stream)
}

// conversation returns the visitor's live session, opening it (with the
// chatbot's greeting as its first message) when there is none.
func (ch *Channel) conversation(ctx context.Context, cb *store.Chatbot, inst *store.Instance, bot *store.Bot, key string) (*store.Session, error) {
	se, err := ch.st.LiveSession(ctx, inst.ID, key)
	if err != nil || se != nil {
		return se, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	se = &store.Session{ID: store.NewID(), InstanceID: inst.ID, BotID: bot.ID, RemoteJID: key, Status: store.SessionOpened,
		Reason: "web chat", CreatedAt: now, UpdatedAt: now}
	greeting := strings.TrimSpace(cb.Setting("greeting"))
	err = ch.outbox.Tx(ctx, func(ctx context.Context) error {
		if err := ch.st.CreateSession(ctx, se); err != nil {
			return err
		}
		return ch.outbox.Emit(ctx, inst, bots.EventSessionOpened, map[string]string{
			"sessionId": se.ID, "botId": se.BotID, "remoteJid": se.RemoteJID, "pushName": "", "status": se.Status,
			"reason": se.Reason,
		})
	})
	if err != nil {
		return nil, err
	}
	if greeting != "" {
		if _, err := ch.host.Post(ctx, inst, bots.Outbound{ChatJID: key, ChatKey: key, Text: greeting, BotID: bot.ID,
			SessionID: se.ID}); err != nil {
			return nil, err
		}
	}
	return se, nil
}

// needsLead tells whether the chatbot asks for the visitor's email first
// and the visitor has not given one yet.
func (ch *Channel) needsLead(ctx context.Context, cb *store.Chatbot, t Turn) (bool, error) {
	if on, _ := cb.Settings["isRequestUserInfoEnabled"].(bool); !on {
		return false, nil
	}
	l, err := ch.st.VisitorLead(ctx, cb.ID, t.Platform, t.Visitor)
	return l == nil, err
}

var emailCandidate = regexp.MustCompile(`[^\s<>()\[\],;:"']+@[^\s<>()\[\],;:"']+`)

// EmailIn returns the first valid email address in text, or "".
func EmailIn(text string) string {
	for _, cand := range emailCandidate.FindAllString(text, 5) {
		cand = strings.TrimRight(cand, ".!?")
		a, err := mail.ParseAddress(cand)
		if err != nil || a.Address != cand || len(cand) > 254 {
			continue
		}
		_, domain, _ := strings.Cut(cand, "@")
		if i := strings.LastIndexByte(domain, '.'); i > 0 && i < len(domain)-2 {
			return strings.ToLower(cand)
		}
	}
	return ""
}

// captureLead answers a visitor who has not given their email yet: the
// email is stored as a lead and thanked for, anything else asked again.
// The chatbot's own texts answer, without a model.
func (ch *Channel) captureLead(ctx context.Context, cb *store.Chatbot, inst *store.Instance, bot *store.Bot, se *store.Session,
	t Turn, in bots.Inbound, content json.RawMessage,
) error {
	email := EmailIn(t.Text)
	reply, reason := LeadAsk, "lead capture: no email address yet"
	if strings.Contains(t.Text, "@") && email == "" {
		reply = LeadInvalid
	}
	if email != "" {
		reply, reason = LeadThanks, "lead capture: email address given"
		err := ch.st.PutLead(ctx, &store.Lead{ID: store.NewID(), ChatbotID: cb.ID, SessionID: se.ID, Platform: t.Platform,
			SnsUserID: t.Visitor, Email: email, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)})
		if err != nil {
			return err
		}
	}
	err := ch.host.ReceiveDecided(ctx, inst, in, content, store.MessageOutcome{State: store.MessageAnswered, Reason: reason,
		BotID: bot.ID, SessionID: se.ID})
	if err != nil {
		return err
	}
	_, err = ch.host.Post(ctx, inst, bots.Outbound{ChatJID: in.ChatJID, ChatKey: in.ChatJID, Text: reply, BotID: bot.ID,
		SessionID: se.ID})
	return err
}

// ---- the answer, as JSON or server-sent events

// MessageView is an answer as the chat routes show it.
type MessageView struct {
	ID      string `json:"id"`
	Role    string `json:"role"`
	Content string `json:"content"`
	Partial bool   `json:"partial,omitempty"`
}

// UsageView is what an answer cost, in OpenAI's words.
type UsageView struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Result is the answer to one turn.
type Result struct {
	SessionID string       `json:"sessionId"`
	Message   *MessageView `json:"message"`
	Sources   []any        `json:"sources"`
	Usage     UsageView    `json:"usage"`
	HumanMode bool         `json:"humanMode"`
}

func result(se *store.Session, e event) Result {
	m := e.message
	return Result{
		SessionID: se.ID,
		Message:   &MessageView{ID: m.ID, Role: "assistant", Content: m.Text, Partial: e.partial},
		Sources:   []any{},
		Usage: UsageView{PromptTokens: m.PromptTokens, CompletionTokens: m.CompletionTokens,
			TotalTokens: m.PromptTokens + m.CompletionTokens},
	}
}

// sse writes server-sent events to a response.
type sse struct{ res *echo.Response }

func startSSE(c echo.Context) sse {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies must not hold deltas back
	c.Response().WriteHeader(http.StatusOK)
	return sse{res: c.Response()}
}

func (s sse) send(name string, data any) {
	b, _ := json.Marshal(data)
	s.res.Write([]byte("event: " + name + "\ndata: " + string(b) + "\n\n"))
	s.res.Flush()
}

func (s sse) comment(text string) {
	s.res.Write([]byte(": " + text + "\n\n"))
	s.res.Flush()
}

func errorData(code, message string) map[string]any {
	return map[string]any{"error": map[string]string{"code": code, "message": message}}
}

// respond writes the turn's answer as w receives it.
func (ch *Channel) respond(c echo.Context, w *waiter, se *store.Session, stream bool) error {
	ctx := c.Request().Context()
	var out sse
	if stream {
		out = startSSE(c)
		out.send(EventStart, map[string]string{"sessionId": se.ID})
	}
	hb := time.NewTicker(ch.cfg.Heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil // the engine goes on; what it produced is kept, cut short
		case <-hb.C:
			if stream {
				out.comment("heartbeat")
			}
		case <-w.wake:
			for _, e := range w.take() {
				switch {
				case e.kind == EventDone && stream:
					out.send(EventDone, result(se, e))
					return nil
				case e.kind == EventDone:
					return c.JSON(http.StatusOK, result(se, e))
				case e.kind == EventError && stream:
					out.send(EventError, errorData(e.code, e.text))
					return nil
				case e.kind == EventError:
					code := wagate.EUPSTREAM
					if e.code != string(wagate.EUPSTREAM) {
						code = wagate.EUNPROCESSABLE
					}
					return &wagate.Error{Code: code, Messages: []string{e.text}}
				case stream && e.kind == EventDelta:
					out.send(EventDelta, map[string]string{"content": e.text})
				case stream && e.kind == EventReset:
					out.send(EventReset, map[string]string{})
				}
			}
		}
	}
}

// human answers a turn of a conversation a person has taken over.
func (ch *Channel) human(c echo.Context, se *store.Session, stream bool) error {
	r := Result{SessionID: se.ID, Sources: []any{}, HumanMode: true}
	if !stream {
		return c.JSON(http.StatusOK, r)
	}
	out := startSSE(c)
	out.send(EventStart, map[string]string{"sessionId": se.ID})
	out.send(EventHuman, map[string]any{"sessionId": se.ID, "humanMode": true})
	out.send(EventDone, r)
	return nil
}

// CheckText applies the length cap to a visitor's text.
func CheckText(field, text string, limit int) error {
	switch n := utf8.RuneCountInString(text); {
	case strings.TrimSpace(text) == "":
		return wagate.Invalid(field, "required")
	case n > limit:
		return wagate.FieldError(wagate.ETOOLARGE, field, "longer than the limit of "+itoa(limit)+" characters")
	}
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }
