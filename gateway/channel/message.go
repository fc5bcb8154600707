package channel

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/store"
)

// Kinds of Message, named as Evolution's send routes name them.
const (
	KindText     = "text"
	KindImage    = "image"
	KindVideo    = "video"
	KindDocument = "document"
	KindAudio    = "audio" // a voice note (push to talk)
	KindSticker  = "sticker"
	KindLocation = "location"
	KindContact  = "contact"
	KindReaction = "reaction"
	KindPoll     = "poll"
	KindList     = "list"
	KindButtons  = "buttons"
)

// Message is a message of any kind to send, as the message routes take it.
// The gateway has validated it and resolved its media to bytes; the channel
// turns it into its own wire form.
type Message struct {
	Kind  string
	To    string // the chat JID; status@broadcast for a status
	Text  string // the text, or a media caption
	Delay time.Duration

	Media    *Media
	Location *Location
	Contacts []Contact
	Reaction *Reaction
	Poll     *Poll
	List     *List
	Buttons  *Buttons
	Status   *Status // set for a status (story); To is status@broadcast

	Quoted           *Key
	Mentioned        []string // JIDs
	MentionsEveryOne bool
	LinkPreview      bool
	// Preview is the preview of the text's first link, when LinkPreview
	// asked for one and the gateway could read the page.
	Preview *LinkPreview
}

// LinkPreview is what a text's link shows: the page's title, description
// and a JPEG thumbnail.
type LinkPreview struct {
	URL         string // the page, after redirects
	MatchedText string // the URL as it appears in the text
	Title       string
	Description string
	ImageURL    string
	Thumbnail   []byte // JPEG; nil when the page has no JPEG image
}

// Key names one message, as Evolution's key objects do.
type Key struct {
	ID          string `json:"id"`
	RemoteJID   string `json:"remoteJid"`
	FromMe      bool   `json:"fromMe"`
	Participant string `json:"participant,omitempty"`
}

// Media is an attachment to send.
type Media struct {
	Data     []byte
	Mimetype string
	FileName string
	URL      string // where it was fetched from, when given by URL
}

// Location is a point on the map.
type Location struct {
	Latitude, Longitude float64
	Name, Address       string
}

// Contact is one shared contact card.
type Contact struct {
	FullName, WUID, PhoneNumber, Organization, Email, URL string
}

// Reaction reacts to Key with Emoji; an empty Emoji removes the reaction.
type Reaction struct {
	Key   Key
	Emoji string
}

// Poll asks a question with options.
type Poll struct {
	Name            string
	SelectableCount int
	Values          []string
}

// List is an interactive list message.
type List struct {
	Title, Description, FooterText, ButtonText string
	Sections                                   []ListSection
}

// ListSection is one titled group of rows.
type ListSection struct {
	Title string
	Rows  []ListRow
}

// ListRow is one choice of a list.
type ListRow struct{ Title, Description, RowID string }

// Buttons is an interactive message with reply buttons.
type Buttons struct {
	Title, Description, Footer string
	Buttons                    []Button
}

// Button is one reply button.
type Button struct{ ID, DisplayText string }

// Status describes a status (story) post.
type Status struct {
	BackgroundColor string // #RRGGBB, text statuses
	Font            int
	StatusJIDList   []string
	AllContacts     bool
}

// SentMessage is what a channel reports after sending a Message: the
// delivery facts and the message as it is recorded and reported
// (Evolution's messageType and message object).
type SentMessage struct {
	bots.Sent
	MessageType string
	Content     json.RawMessage
}

// MessageSender is implemented by channels that send every kind of Message.
type MessageSender interface {
	SendMessage(ctx context.Context, inst *store.Instance, m *Message) (SentMessage, error)
}

// VCard renders a contact as the vCard WhatsApp shows as a contact card;
// waid makes the card's "Message" button open a chat with the number.
func VCard(c Contact) string {
	esc := strings.NewReplacer(`\`, `\\`, "\n", `\n`, ",", `\,`, ";", `\;`)
	var b strings.Builder
	b.WriteString("BEGIN:VCARD\nVERSION:3.0\n")
	fmt.Fprintf(&b, "FN:%s\n", esc.Replace(c.FullName))
	if c.Organization != "" {
		fmt.Fprintf(&b, "ORG:%s;\n", esc.Replace(c.Organization))
	}
	if c.Email != "" {
		fmt.Fprintf(&b, "EMAIL:%s\n", esc.Replace(c.Email))
	}
	if c.URL != "" {
		fmt.Fprintf(&b, "URL:%s\n", esc.Replace(c.URL))
	}
	waid := c.WUID
	if waid == "" {
		waid = digitsOnly(c.PhoneNumber)
	}
	waid, _, _ = strings.Cut(waid, "@")
	fmt.Fprintf(&b, "TEL;type=CELL;type=VOICE;waid=%s:%s\n", waid, esc.Replace(c.PhoneNumber))
	b.WriteString("END:VCARD")
	return b.String()
}

func digitsOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
