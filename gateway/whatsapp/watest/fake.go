// Package watest is a fake whatsmeow client for tests: it records what the
// WhatsApp channel asks of it and emits real whatsmeow events (and QR
// channel items) when a test says so. It never opens a socket.
package watest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waE2E"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wagate/wagate/gateway/whatsapp"
)

// Sent is one message the channel sent.
type Sent struct {
	To      types.JID
	ID      types.MessageID
	Message *waE2E.Message
}

// Upload is one attachment the channel uploaded.
type Upload struct {
	Data []byte
	Kind whatsmeow.MediaType
}

// Presence is one chat presence the channel set.
type Presence struct {
	Chat  types.JID
	State types.ChatPresence
	Media types.ChatPresenceMedia
	At    time.Time
}

// Client is the fake. Its exported fields configure it; the methods below
// the Client interface are the test's controls.
type Client struct {
	// Device is the device the channel made the client for.
	Device *wastore.Device
	// PairingCode is what PairPhone answers.
	PairingCode string
	// ConnectErr, SendErr and LogoutErr make those calls fail.
	ConnectErr, SendErr, LogoutErr error
	// Media is what DownloadToFile serves, by direct path.
	Media map[string][]byte
	// OnWhatsApp lists the phone numbers (digits) IsOnWhatsApp finds.
	OnWhatsApp map[string]types.JID
	// Pictures answers GetProfilePictureInfo.
	Pictures map[types.JID]string
	// Groups answers GetGroupInfo.
	Groups map[types.JID]*types.GroupInfo
	// LIDs maps hidden-user JIDs to phone-number JIDs for PNForLID.
	LIDs map[types.JID]types.JID

	mu          sync.Mutex
	handlers    []whatsmeow.EventHandler
	qr          chan whatsmeow.QRChannelItem
	connected   bool
	loggedIn    bool
	jid, lid    types.JID
	pushName    string
	connects    int
	loggedOut   bool
	deleted     bool
	sent        []Sent
	presences   []Presence
	paired      []string // phones PairPhone was called with
	read        [][]types.MessageID
	rejected    []string
	nextID      int
	uploads     []Upload
	appState    []appstate.PatchInfo
	blocks      []string
	presence    []types.Presence
	connectedCh chan struct{}
}

var _ whatsapp.Client = (*Client)(nil)

// Factory makes fakes and remembers them, in order.
type Factory struct {
	mu         sync.Mutex
	clients    []*Client
	made       chan *Client
	connectErr error
}

// FailConnect makes the Connect of the clients made from now on fail
// with err, as a dial to an unreachable WhatsApp does.
func (f *Factory) FailConnect(err error) {
	f.mu.Lock()
	f.connectErr = err
	f.mu.Unlock()
}

// NewFactory returns an empty factory.
func NewFactory() *Factory { return &Factory{made: make(chan *Client, 64)} }

// New is the whatsapp.ClientFactory.
func (f *Factory) New(dev *wastore.Device, _ waLog.Logger) whatsapp.Client {
	c := &Client{Device: dev, connectedCh: make(chan struct{}, 64)}
	if dev != nil && dev.ID != nil {
		c.jid, c.lid = *dev.ID, dev.LID
	}
	f.mu.Lock()
	c.ConnectErr = f.connectErr
	f.clients = append(f.clients, c)
	f.mu.Unlock()
	f.made <- c
	return c
}

// Next waits for the next client the channel makes.
func (f *Factory) Next(timeout time.Duration) (*Client, error) {
	select {
	case c := <-f.made:
		return c, nil
	case <-time.After(timeout):
		return nil, errors.New("watest: no client was made")
	}
}

// Clients returns every client made so far.
func (f *Factory) Clients() []*Client {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Client(nil), f.clients...)
}

// --- whatsapp.Client ---

func (c *Client) Connect() error {
	c.mu.Lock()
	if c.ConnectErr != nil {
		c.mu.Unlock()
		return c.ConnectErr
	}
	c.connects++
	c.connected = true
	c.mu.Unlock()
	c.connectedCh <- struct{}{}
	return nil
}

func (c *Client) Disconnect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.connected, c.loggedIn = false, false
}

func (c *Client) Logout(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.LogoutErr != nil {
		return c.LogoutErr
	}
	c.loggedOut = true
	c.connected, c.loggedIn = false, false
	c.deleted = true
	c.jid, c.lid = types.EmptyJID, types.EmptyJID
	return nil
}

func (c *Client) DeleteDevice(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deleted = true
	c.jid, c.lid = types.EmptyJID, types.EmptyJID
	return nil
}

func (c *Client) IsConnected() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.connected }
func (c *Client) IsLoggedIn() bool  { c.mu.Lock(); defer c.mu.Unlock(); return c.loggedIn }
func (c *Client) OwnJID() types.JID { c.mu.Lock(); defer c.mu.Unlock(); return c.jid }
func (c *Client) OwnLID() types.JID { c.mu.Lock(); defer c.mu.Unlock(); return c.lid }
func (c *Client) PushName() string  { c.mu.Lock(); defer c.mu.Unlock(); return c.pushName }

func (c *Client) GetQRChannel(context.Context) (<-chan whatsmeow.QRChannelItem, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.jid.IsEmpty() {
		return nil, whatsmeow.ErrQRStoreContainsID
	}
	c.qr = make(chan whatsmeow.QRChannelItem, 8)
	return c.qr, nil
}

func (c *Client) PairPhone(_ context.Context, phone string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.connected {
		return "", errors.New("watest: PairPhone before Connect")
	}
	c.paired = append(c.paired, phone)
	return c.PairingCode, nil
}

func (c *Client) AddEventHandler(h whatsmeow.EventHandler) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handlers = append(c.handlers, h)
	return uint32(len(c.handlers))
}

func (c *Client) GenerateMessageID() types.MessageID {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	return types.MessageID(fmt.Sprintf("3EB0FAKE%08d", c.nextID))
}

func (c *Client) SendMessage(_ context.Context, to types.JID, msg *waE2E.Message, id types.MessageID) (whatsmeow.SendResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loggedIn {
		return whatsmeow.SendResponse{}, whatsmeow.ErrNotLoggedIn
	}
	if c.SendErr != nil {
		return whatsmeow.SendResponse{}, c.SendErr
	}
	c.sent = append(c.sent, Sent{To: to, ID: id, Message: msg})
	return whatsmeow.SendResponse{ID: id, Timestamp: time.Now().Truncate(time.Second)}, nil
}

func (c *Client) SendChatPresence(_ context.Context, chat types.JID, state types.ChatPresence, media types.ChatPresenceMedia) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.presences = append(c.presences, Presence{Chat: chat, State: state, Media: media, At: time.Now()})
	return nil
}

func (c *Client) SendPresence(_ context.Context, p types.Presence) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.presence = append(c.presence, p)
	return nil
}

func (c *Client) IsOnWhatsApp(_ context.Context, phones []string) ([]types.IsOnWhatsAppResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]types.IsOnWhatsAppResponse, len(phones))
	for i, p := range phones {
		jid, ok := c.OnWhatsApp[strings.TrimPrefix(p, "+")]
		out[i] = types.IsOnWhatsAppResponse{Query: p, JID: jid, IsIn: ok}
	}
	return out, nil
}

func (c *Client) GetProfilePictureInfo(_ context.Context, jid types.JID, _ *whatsmeow.GetProfilePictureParams) (*types.ProfilePictureInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	url, ok := c.Pictures[jid]
	if !ok {
		return nil, nil
	}
	return &types.ProfilePictureInfo{URL: url, ID: "1", Type: "image"}, nil
}

func (c *Client) UpdateBlocklist(_ context.Context, jid types.JID, action events.BlocklistChangeAction) (*types.Blocklist, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blocks = append(c.blocks, string(action)+" "+jid.String())
	return &types.Blocklist{}, nil
}

func (c *Client) SendAppState(_ context.Context, patch appstate.PatchInfo) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.appState = append(c.appState, patch)
	return nil
}

// AppState returns the app state patches sent.
func (c *Client) AppState() []appstate.PatchInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]appstate.PatchInfo(nil), c.appState...)
}

// Blocks returns the blocklist changes, as "block jid" or "unblock jid".
func (c *Client) Blocks() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.blocks...)
}

// AccountPresences returns the presences SendPresence set.
func (c *Client) AccountPresences() []types.Presence {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]types.Presence(nil), c.presence...)
}

func (c *Client) MarkRead(_ context.Context, ids []types.MessageID, _ time.Time, _, _ types.JID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read = append(c.read, ids)
	return nil
}

func (c *Client) RejectCall(_ context.Context, from types.JID, callID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rejected = append(c.rejected, from.String()+"/"+callID)
	return nil
}

func (c *Client) DownloadToFile(_ context.Context, msg whatsmeow.DownloadableMessage, f whatsmeow.File) error {
	c.mu.Lock()
	data, ok := c.Media[msg.GetDirectPath()]
	c.mu.Unlock()
	if !ok {
		return errors.New("watest: no media")
	}
	_, err := f.Write(data)
	return err
}

func (c *Client) Upload(_ context.Context, data []byte, kind whatsmeow.MediaType) (whatsmeow.UploadResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loggedIn {
		return whatsmeow.UploadResponse{}, whatsmeow.ErrNotLoggedIn
	}
	c.uploads = append(c.uploads, Upload{Data: append([]byte(nil), data...), Kind: kind})
	n := len(c.uploads)
	return whatsmeow.UploadResponse{
		URL:           fmt.Sprintf("https://mmg.whatsapp.net/fake/%d", n),
		DirectPath:    fmt.Sprintf("/fake/%d", n),
		MediaKey:      []byte(fmt.Sprintf("media-key-%d", n)),
		FileEncSHA256: []byte(fmt.Sprintf("enc-sha-%d", n)),
		FileSHA256:    []byte(fmt.Sprintf("sha-%d", n)),
		FileLength:    uint64(len(data)),
	}, nil
}

func (c *Client) GetGroupInfo(_ context.Context, jid types.JID) (*types.GroupInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.Groups[jid]; ok {
		return g, nil
	}
	return nil, whatsmeow.ErrGroupNotFound
}

func (c *Client) PNForLID(_ context.Context, lid types.JID) (types.JID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.LIDs[lid], nil
}

func (c *Client) LIDForPN(_ context.Context, pn types.JID) (types.JID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for lid, p := range c.LIDs {
		if p == pn {
			return lid, nil
		}
	}
	return types.EmptyJID, nil
}

// --- controls ---

// Emit dispatches evt to the channel's handlers as whatsmeow would, after
// updating the connection flags the event implies.
func (c *Client) Emit(evt any) {
	c.mu.Lock()
	switch e := evt.(type) {
	case *events.Connected:
		c.connected, c.loggedIn = true, true
	case *events.PairSuccess:
		c.jid, c.lid = e.ID, e.LID
		c.pushName = e.BusinessName
	case *events.Disconnected, *events.StreamReplaced, *events.ClientOutdated, *events.TemporaryBan, *events.ConnectFailure:
		c.connected, c.loggedIn = false, false
	case *events.LoggedOut:
		c.connected, c.loggedIn = false, false
		c.jid, c.lid = types.EmptyJID, types.EmptyJID
	}
	handlers := append([]whatsmeow.EventHandler(nil), c.handlers...)
	c.mu.Unlock()
	for _, h := range handlers {
		h(evt)
	}
}

// QR sends an item down the QR channel.
func (c *Client) QR(item whatsmeow.QRChannelItem) {
	c.mu.Lock()
	ch := c.qr
	c.mu.Unlock()
	ch <- item
}

// CloseQR ends the QR channel, as whatsmeow does after its last item.
func (c *Client) CloseQR() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.qr)
}

// WaitConnect waits for a call to Connect.
func (c *Client) WaitConnect(timeout time.Duration) error {
	select {
	case <-c.connectedCh:
		return nil
	case <-time.After(timeout):
		return errors.New("watest: Connect was not called")
	}
}

// SetPushName sets the account's profile name.
func (c *Client) SetPushName(name string) { c.mu.Lock(); c.pushName = name; c.mu.Unlock() }

// Connects counts calls to Connect.
func (c *Client) Connects() int { c.mu.Lock(); defer c.mu.Unlock(); return c.connects }

// LoggedOut and Deleted report whether Logout or DeleteDevice ran.
func (c *Client) LoggedOut() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.loggedOut }
func (c *Client) Deleted() bool   { c.mu.Lock(); defer c.mu.Unlock(); return c.deleted }

// SentMessages returns what was sent.
func (c *Client) SentMessages() []Sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Sent(nil), c.sent...)
}

// Uploads returns the attachments uploaded.
func (c *Client) Uploads() []Upload {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Upload(nil), c.uploads...)
}

// Presences returns the chat presences set.
func (c *Client) Presences() []Presence {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Presence(nil), c.presences...)
}

// PairedPhones returns the numbers PairPhone was called with.
func (c *Client) PairedPhones() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.paired...)
}

// Read returns the ids marked read, one slice per MarkRead call.
func (c *Client) Read() [][]types.MessageID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]types.MessageID(nil), c.read...)
}

// Rejected returns the calls rejected, as "from/callID".
func (c *Client) Rejected() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.rejected...)
}
