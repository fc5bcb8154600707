package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store"
)

// maxSendMedia caps one attachment sent through the message routes,
// WhatsApp's limit for audio, video and images (documents may be larger on
// WhatsApp, but a JSON body carrying base64 is no way to move them).
const maxSendMedia = 16 << 20

// mediaBodyLimit is the body limit of the routes that take media inline:
// the attachment in base64 and the JSON around it.
const mediaBodyLimit = maxSendMedia/3*4 + 64<<10

// sendOptions are the fields every Evolution send route shares.
type sendOptions struct {
	Number            string          `json:"number"`
	Delay             int64           `json:"delay"` // ms of "composing" before sending
	Quoted            *quotedRequest  `json:"quoted"`
	LinkPreview       *bool           `json:"linkPreview"` // sendText: preview the text's first link
	MentionsEveryOne  bool            `json:"mentionsEveryOne"`
	EveryOne          bool            `json:"everyOne"` // Evolution's schema spells mentionsEveryOne so
	Mentioned         []string        `json:"mentioned"`
	Encoding          *bool           `json:"encoding"`          // accepted; audio is always converted when needed
	NotConvertSticker bool            `json:"notConvertSticker"` // refuse a sticker that is not WebP instead of converting it
	Options           json.RawMessage `json:"options"`           // Evolution v1 clients; ignored
}

type quotedRequest struct {
	Key struct {
		ID          string `json:"id"`
		RemoteJID   string `json:"remoteJid"`
		FromMe      bool   `json:"fromMe"`
		Participant string `json:"participant"`
	} `json:"key"`
	Message json.RawMessage `json:"message"`
}

// message checks the options and starts the message they describe.
func (o *sendOptions) message(p *wagate.Problems, kind string) *channel.Message {
	m := &channel.Message{Kind: kind, MentionsEveryOne: o.MentionsEveryOne || o.EveryOne}
	jid, problem := normalizeNumber(o.Number)
	if problem != "" {
		p.Add("number", problem)
	}
	m.To = jid
	if o.Delay < 0 || o.Delay > maxDelay {
		p.Add("delay", "must be from 0 to 300000 milliseconds")
	}
	m.Delay = time.Duration(o.Delay) * time.Millisecond
	if q := o.Quoted; q != nil {
		if strings.TrimSpace(q.Key.ID) == "" {
			p.Add("quoted.key.id", "required when quoting")
		}
		m.Quoted = &channel.Key{ID: q.Key.ID, RemoteJID: q.Key.RemoteJID, FromMe: q.Key.FromMe, Participant: q.Key.Participant}
	}
	for i, n := range o.Mentioned {
		jid, problem := normalizeNumber(n)
		if problem != "" {
			p.Add(fmt.Sprintf("mentioned[%d]", i), problem)
			continue
		}
		m.Mentioned = append(m.Mentioned, jid)
	}
	m.LinkPreview = o.LinkPreview != nil && *o.LinkPreview
	return m
}

// sendAny sends m through the instance's channel, stores it and reports it
// as send.message, and answers the record.
func (g *Gateway) sendAny(c echo.Context, m *channel.Message) error {
	ctx := c.Request().Context()
	inst := instanceOf(c)
	ms, ok := g.channelOf(inst).(channel.MessageSender)
	if !ok {
		return wagate.Errorf(wagate.EINVALID, "the %s channel cannot send this kind of message", inst.Integration)
	}
	sent, err := ms.SendMessage(ctx, inst, m)
	if err != nil {
		return err
	}
	rec := &store.Message{
		InstanceID:  inst.ID,
		ID:          sent.ID,
		Direction:   store.Outbound,
		RemoteJID:   m.To,
		FromMe:      true,
		MessageType: sent.MessageType,
		Content:     sent.Content,
		Text:        describe(m),
		Status:      sent.Status,
		Timestamp:   sent.Timestamp,
		CreatedAt:   stamp(),
	}
	if m.Quoted != nil {
		rec.QuotedID = m.Quoted.ID
	}
	// The channel has sent it: record it even if the caller went away.
	err = g.outbox.Tx(context.WithoutCancel(ctx), func(ctx context.Context) error {
		if _, err := g.store.InsertMessage(ctx, rec); err != nil {
			return err
		}
		return g.outbox.Emit(ctx, inst, webhook.SendMessage, record(rec))
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, record(rec))
}

// describe is the text stored with a message for search, history and the
// conversation routes: its text or caption, or a short description of what
// has none.
func describe(m *channel.Message) string {
	switch {
	case m.Text != "":
		return m.Text
	case m.Location != nil:
		return strings.TrimSpace(fmt.Sprintf("[location] %s %s (%g, %g)", m.Location.Name, m.Location.Address, m.Location.Latitude, m.Location.Longitude))
	case len(m.Contacts) > 0:
		names := make([]string, len(m.Contacts))
		for i, c := range m.Contacts {
			names[i] = c.FullName
		}
		return "[contact] " + strings.Join(names, ", ")
	case m.Reaction != nil:
		return m.Reaction.Emoji
	case m.Poll != nil:
		return m.Poll.Name
	case m.List != nil:
		return m.List.Title
	case m.Buttons != nil:
		return m.Buttons.Title
	}
	return ""
}

// resolveMedia turns the media field (an http(s) URL or base64, with or
// without a data: prefix) into bytes, fetched through the SSRF-safe fetcher
// with the size cap, and settles the mimetype: the one given, else the
// data URL's or the server's, else what the bytes say. kind is checked
// against what the bytes are, so an HTML error page never goes out as an
// image.
func (g *Gateway) resolveMedia(ctx context.Context, p *wagate.Problems, field, media, mimetype, kind string) *channel.Media {
	media = strings.TrimSpace(media)
	out := &channel.Media{Mimetype: strings.TrimSpace(mimetype)}
	switch {
	case media == "":
		p.Add(field, "required")
		return nil
	case strings.HasPrefix(media, "https://") || strings.HasPrefix(media, "http://"):
		resp, err := g.fetch.Get(ctx, field, media, maxSendMedia)
		if err != nil {
			p.Add(field, strings.TrimPrefix(strings.Join(wagate.ErrorMessages(err), "; "), field+": "))
			return nil
		}
		out.Data, out.URL = resp.Body, media
		if out.Mimetype == "" {
			if mt, _, err := mime.ParseMediaType(resp.ContentType); err == nil && mt != "application/octet-stream" && mt != "text/plain" {
				out.Mimetype = resp.ContentType
			}
		}
	default:
		data, declared, ok := decodeBase64(media)
		if !ok {
			p.Add(field, "neither an http(s) URL nor valid base64")
			return nil
		}
		if len(data) > maxSendMedia {
			p.Add(field, fmt.Sprintf("larger than %d bytes", maxSendMedia))
			return nil
		}
		out.Data = data
		if out.Mimetype == "" {
			out.Mimetype = declared
		}
	}
	sniffed, _, _ := mime.ParseMediaType(http.DetectContentType(out.Data))
	if out.Mimetype == "" {
		out.Mimetype = sniffed
	}
	if problem := mediaMismatch(kind, sniffed); problem != "" {
		p.Add(field, problem)
		return nil
	}
	return out
}

// mediaMismatch says why bytes that sniff as sniffed cannot be sent as
// kind; "" when they can (or when sniffing cannot tell).
func mediaMismatch(kind, sniffed string) string {
	generic := sniffed == "application/octet-stream"
	ok := true
	switch kind {
	case channel.KindImage:
		ok = strings.HasPrefix(sniffed, "image/")
	case channel.KindSticker:
		ok = strings.HasPrefix(sniffed, "image/") || generic
	case channel.KindVideo:
		ok = strings.HasPrefix(sniffed, "video/") || generic
	case channel.KindAudio:
		ok = strings.HasPrefix(sniffed, "audio/") || sniffed == "application/ogg" || strings.HasPrefix(sniffed, "video/") || generic
	}
	if ok {
		return ""
	}
	return fmt.Sprintf("is %s, not %s %s", sniffed, article(kind), kind)
}

func article(kind string) string {
	if strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an"
	}
	return "a"
}

// decodeBase64 decodes inline media, with or without a data URL prefix
// (whose mimetype it returns), in standard or URL-safe alphabet, padded or
// not.
func decodeBase64(s string) (data []byte, mimetype string, ok bool) {
	if rest, found := strings.CutPrefix(s, "data:"); found {
		head, payload, found := strings.Cut(rest, ",")
		if !found || !strings.HasSuffix(head, ";base64") {
			return nil, "", false
		}
		mimetype, s = strings.TrimSuffix(head, ";base64"), payload
	}
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' {
			return -1
		}
		return r
	}, s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) > 0 {
			return b, mimetype, true
		}
	}
	return nil, "", false
}

// --- routes ---

type sendMediaRequest struct {
	sendOptions
	Mediatype string `json:"mediatype"`
	Mimetype  string `json:"mimetype"`
	Media     string `json:"media"`
	FileName  string `json:"fileName"`
	Caption   string `json:"caption"`
}

func (g *Gateway) sendMedia(c echo.Context) error {
	var req sendMediaRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	kind := req.Mediatype
	switch kind {
	case channel.KindImage, channel.KindVideo, channel.KindDocument:
	case channel.KindAudio:
		// Evolution sends audio of sendMedia as a voice note too.
	case "":
		p.Add("mediatype", "required: image, video, document or audio")
	default:
		p.Add("mediatype", "must be image, video, document or audio")
	}
	m := req.message(&p, kind)
	m.Text = req.Caption
	if len(req.Caption) > maxTextLen {
		p.Add("caption", "longer than 65536 characters")
	}
	if kind != "" {
		m.Media = g.resolveMedia(c.Request().Context(), &p, "media", req.Media, req.Mimetype, kind)
	}
	if err := p.Err(); err != nil {
		return err
	}
	m.Media.FileName = req.FileName
	if m.Media.FileName == "" && kind == channel.KindDocument {
		m.Media.FileName = "document" + extensionOf(m.Media.Mimetype)
	}
	return g.sendAny(c, m)
}

func extensionOf(mimetype string) string {
	mt, _, _ := mime.ParseMediaType(mimetype)
	if mt == "application/pdf" {
		return ".pdf"
	}
	if exts, _ := mime.ExtensionsByType(mt); len(exts) > 0 {
		return exts[0]
	}
	return ""
}

type sendAudioRequest struct {
	sendOptions
	Audio string `json:"audio"`
}

func (g *Gateway) sendWhatsAppAudio(c echo.Context) error {
	var req sendAudioRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	m := req.message(&p, channel.KindAudio)
	m.Media = g.resolveMedia(c.Request().Context(), &p, "audio", req.Audio, "", channel.KindAudio)
	if err := p.Err(); err != nil {
		return err
	}
	return g.sendAny(c, m)
}

type sendStickerRequest struct {
	sendOptions
	Sticker string `json:"sticker"`
}

func (g *Gateway) sendSticker(c echo.Context) error {
	var req sendStickerRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	m := req.message(&p, channel.KindSticker)
	m.Media = g.resolveMedia(c.Request().Context(), &p, "sticker", req.Sticker, "", channel.KindSticker)
	if m.Media != nil && req.NotConvertSticker && !strings.HasPrefix(http.DetectContentType(m.Media.Data), "image/webp") {
		p.Add("sticker", "is not WebP, and notConvertSticker forbids converting it")
	}
	if err := p.Err(); err != nil {
		return err
	}
	return g.sendAny(c, m)
}

type sendLocationRequest struct {
	sendOptions
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
	Name      string   `json:"name"`
	Address   string   `json:"address"`
}

func (g *Gateway) sendLocation(c echo.Context) error {
	var req sendLocationRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	m := req.message(&p, channel.KindLocation)
	switch {
	case req.Latitude == nil:
		p.Add("latitude", "required")
	case *req.Latitude < -90 || *req.Latitude > 90:
		p.Add("latitude", "must be from -90 to 90")
	}
	switch {
	case req.Longitude == nil:
		p.Add("longitude", "required")
	case *req.Longitude < -180 || *req.Longitude > 180:
		p.Add("longitude", "must be from -180 to 180")
	}
	if err := p.Err(); err != nil {
		return err
	}
	m.Location = &channel.Location{Latitude: *req.Latitude, Longitude: *req.Longitude, Name: req.Name, Address: req.Address}
	return g.sendAny(c, m)
}

type contactRequest struct {
	FullName     string `json:"fullName"`
	WUID         string `json:"wuid"`
	PhoneNumber  string `json:"phoneNumber"`
	Organization string `json:"organization"`
	Email        string `json:"email"`
	URL          string `json:"url"`
}

type sendContactRequest struct {
	sendOptions
	Contact []contactRequest `json:"contact"`
}

func (g *Gateway) sendContact(c echo.Context) error {
	var req sendContactRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	m := req.message(&p, channel.KindContact)
	if len(req.Contact) == 0 {
		p.Add("contact", "at least one contact is required")
	}
	for i, ct := range req.Contact {
		if strings.TrimSpace(ct.FullName) == "" {
			p.Add(fmt.Sprintf("contact[%d].fullName", i), "required")
		}
		if strings.TrimSpace(ct.PhoneNumber) == "" {
			p.Add(fmt.Sprintf("contact[%d].phoneNumber", i), "required")
		}
		m.Contacts = append(m.Contacts, channel.Contact(ct))
	}
	if err := p.Err(); err != nil {
		return err
	}
	return g.sendAny(c, m)
}

type sendReactionRequest struct {
	Key struct {
		ID          string `json:"id"`
		RemoteJID   string `json:"remoteJid"`
		FromMe      *bool  `json:"fromMe"`
		Participant string `json:"participant"`
	} `json:"key"`
	Reaction *string `json:"reaction"`
}

// sendReaction reacts to a message in the chat its key names; an empty
// reaction removes the instance's reaction.
func (g *Gateway) sendReaction(c echo.Context) error {
	var req sendReactionRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	if strings.TrimSpace(req.Key.ID) == "" {
		p.Add("key.id", "required")
	}
	jid, problem := normalizeNumber(req.Key.RemoteJID)
	if problem != "" {
		p.Add("key.remoteJid", problem)
	}
	if req.Key.FromMe == nil {
		p.Add("key.fromMe", "required")
	}
	if req.Reaction == nil {
		p.Add("reaction", "required; an empty string removes the reaction")
	}
	if err := p.Err(); err != nil {
		return err
	}
	m := &channel.Message{Kind: channel.KindReaction, To: jid, Reaction: &channel.Reaction{
		Key:   channel.Key{ID: req.Key.ID, RemoteJID: jid, FromMe: *req.Key.FromMe, Participant: req.Key.Participant},
		Emoji: *req.Reaction,
	}}
	return g.sendAny(c, m)
}

type sendPollRequest struct {
	sendOptions
	Name            string   `json:"name"`
	SelectableCount *int     `json:"selectableCount"`
	Values          []string `json:"values"`
	MessageSecret   any      `json:"messageSecret"` // accepted; a fresh secret is always made
}

func (g *Gateway) sendPoll(c echo.Context) error {
	var req sendPollRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	m := req.message(&p, channel.KindPoll)
	if strings.TrimSpace(req.Name) == "" {
		p.Add("name", "required")
	}
	if len(req.Values) < 2 || len(req.Values) > 12 {
		p.Add("values", "must have from 2 to 12 options")
	}
	seen := map[string]bool{}
	for i, v := range req.Values {
		switch {
		case strings.TrimSpace(v) == "":
			p.Add(fmt.Sprintf("values[%d]", i), "must not be empty")
		case seen[v]:
			p.Add(fmt.Sprintf("values[%d]", i), "repeats an earlier option")
		}
		seen[v] = true
	}
	count := 1
	if req.SelectableCount != nil {
		count = *req.SelectableCount
	}
	if count < 0 || count > len(req.Values) {
		p.Add("selectableCount", "must be from 0 (any number) to the number of values")
	}
	if err := p.Err(); err != nil {
		return err
	}
	m.Poll = &channel.Poll{Name: req.Name, SelectableCount: count, Values: req.Values}
	return g.sendAny(c, m)
}

type sendListRequest struct {
	sendOptions
	Title       string `json:"title"`
	Description string `json:"description"`
	FooterText  string `json:"footerText"`
	ButtonText  string `json:"buttonText"`
	Sections    []struct {
		Title string `json:"title"`
		Rows  []struct {
			Title       string `json:"title"`
			Description string `json:"description"`
			RowID       string `json:"rowId"`
		} `json:"rows"`
	} `json:"sections"`
}

func (g *Gateway) sendList(c echo.Context) error {
	var req sendListRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	m := req.message(&p, channel.KindList)
	if strings.TrimSpace(req.Title) == "" {
		p.Add("title", "required")
	}
	if strings.TrimSpace(req.ButtonText) == "" {
		p.Add("buttonText", "required")
	}
	if len(req.Sections) == 0 {
		p.Add("sections", "at least one section is required")
	}
	l := &channel.List{Title: req.Title, Description: req.Description, FooterText: req.FooterText, ButtonText: req.ButtonText}
	for i, s := range req.Sections {
		if strings.TrimSpace(s.Title) == "" {
			p.Add(fmt.Sprintf("sections[%d].title", i), "required")
		}
		if len(s.Rows) == 0 {
			p.Add(fmt.Sprintf("sections[%d].rows", i), "at least one row is required")
		}
		sec := channel.ListSection{Title: s.Title}
		for j, r := range s.Rows {
			if strings.TrimSpace(r.Title) == "" {
				p.Add(fmt.Sprintf("sections[%d].rows[%d].title", i, j), "required")
			}
			if strings.TrimSpace(r.RowID) == "" {
				p.Add(fmt.Sprintf("sections[%d].rows[%d].rowId", i, j), "required")
			}
			sec.Rows = append(sec.Rows, channel.ListRow{Title: r.Title, Description: r.Description, RowID: r.RowID})
		}
		l.Sections = append(l.Sections, sec)
	}
	if err := p.Err(); err != nil {
		return err
	}
	m.List = l
	return g.sendAny(c, m)
}

type buttonRequest struct {
	Type        string `json:"type"`
	DisplayText string `json:"displayText"`
	ID          string `json:"id"`
	URL         string `json:"url"`
	CopyCode    string `json:"copyCode"`
	PhoneNumber string `json:"phoneNumber"`
	Currency    string `json:"currency"`
	Name        string `json:"name"`
	KeyType     string `json:"keyType"`
	Key         string `json:"key"`
}

type sendButtonsRequest struct {
	sendOptions
	ThumbnailURL string          `json:"thumbnailUrl"` // accepted; not shown
	Title        string          `json:"title"`
	Description  string          `json:"description"`
	Footer       string          `json:"footer"`
	Buttons      []buttonRequest `json:"buttons"`
}

// sendButtons sends reply buttons. Only "reply" buttons exist outside
// WhatsApp's business platform; copy, url, call and pix buttons are
// refused by name rather than silently dropped.
func (g *Gateway) sendButtons(c echo.Context) error {
	var req sendButtonsRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	m := req.message(&p, channel.KindButtons)
	if strings.TrimSpace(req.Title) == "" {
		p.Add("title", "required")
	}
	if len(req.Buttons) == 0 || len(req.Buttons) > 3 {
		p.Add("buttons", "must have from 1 to 3 buttons")
	}
	b := &channel.Buttons{Title: req.Title, Description: req.Description, Footer: req.Footer}
	for i, bt := range req.Buttons {
		switch bt.Type {
		case "reply":
		case "":
			p.Add(fmt.Sprintf("buttons[%d].type", i), "required")
		default:
			p.Add(fmt.Sprintf("buttons[%d].type", i), fmt.Sprintf("%q buttons are not supported; use reply", bt.Type))
		}
		if strings.TrimSpace(bt.DisplayText) == "" {
			p.Add(fmt.Sprintf("buttons[%d].displayText", i), "required")
		}
		if strings.TrimSpace(bt.ID) == "" {
			p.Add(fmt.Sprintf("buttons[%d].id", i), "required")
		}
		b.Buttons = append(b.Buttons, channel.Button{ID: bt.ID, DisplayText: bt.DisplayText})
	}
	if err := p.Err(); err != nil {
		return err
	}
	m.Buttons = b
	return g.sendAny(c, m)
}

type sendStatusRequest struct {
	Type            string   `json:"type"`
	Content         string   `json:"content"`
	Caption         string   `json:"caption"`
	BackgroundColor string   `json:"backgroundColor"`
	Font            int      `json:"font"`
	StatusJIDList   []string `json:"statusJidList"` // accepted; WhatsApp's own status audience applies
	AllContacts     bool     `json:"allContacts"`
}

// sendStatus posts a status (story): text, image, video or audio.
func (g *Gateway) sendStatus(c echo.Context) error {
	var body struct {
		StatusMessage *sendStatusRequest `json:"statusMessage"` // Evolution v1 wraps it
		sendStatusRequest
	}
	if err := api.Decode(c, &body, true); err != nil {
		return err
	}
	req := &body.sendStatusRequest
	if body.StatusMessage != nil {
		req = body.StatusMessage
	}
	var p wagate.Problems
	m := &channel.Message{To: "status@broadcast", Status: &channel.Status{
		BackgroundColor: req.BackgroundColor, Font: req.Font, StatusJIDList: req.StatusJIDList, AllContacts: req.AllContacts,
	}}
	if req.Font < 0 || req.Font > 5 {
		p.Add("font", "must be from 0 to 5")
	}
	switch req.Type {
	case channel.KindText:
		m.Kind, m.Text = channel.KindText, req.Content
		if strings.TrimSpace(req.Content) == "" {
			p.Add("content", "required")
		}
	case channel.KindImage, channel.KindVideo, channel.KindAudio:
		m.Kind, m.Text = req.Type, req.Caption
		m.Media = g.resolveMedia(c.Request().Context(), &p, "content", req.Content, "", req.Type)
	case "":
		p.Add("type", "required: text, image, video or audio")
	default:
		p.Add("type", "must be text, image, video or audio")
	}
	if err := p.Err(); err != nil {
		return err
	}
	return g.sendAny(c, m)
}
