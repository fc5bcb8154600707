package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"strconv"
	"strings"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
)

// mediaRef is what downloading an attachment needs, read from the stored
// Evolution-shaped message (Baileys' field names, bytes in base64).
type mediaRef struct {
	URL           string `json:"url"`
	DirectPath    string `json:"directPath"`
	MediaKey      []byte `json:"mediaKey"`
	FileEncSha256 []byte `json:"fileEncSha256"`
	FileSha256    []byte `json:"fileSha256"`
	FileLength    string `json:"fileLength"` // protobuf JSON spells 64-bit integers as strings
	Mimetype      string `json:"mimetype"`
	FileName      string `json:"fileName"`
}

// Media downloads the attachment of a stored inbound message of inst
// (audio to transcribe, typically) through the instance's connection,
// refusing one larger than the configured cap before and while
// downloading. It returns the bytes and a file name whose extension names
// the format. It makes the channel a gateway channel.MediaSource.
func (c *Channel) Media(ctx context.Context, inst *store.Instance, m *store.Message) ([]byte, string, error) {
	s := c.existing(inst.ID)
	if s == nil || !s.currentClient().IsLoggedIn() {
		return nil, "", errNotConnected
	}
	msg, ref, err := downloadable(m.Content)
	if err != nil {
		return nil, "", err
	}
	max := c.cfg.MaxMediaBytes
	if n, _ := strconv.ParseInt(ref.FileLength, 10, 64); n > max {
		return nil, "", wagate.Errorf(wagate.ETOOLARGE, "the attachment is %d bytes, over the %d-byte limit", n, max)
	}
	f, err := os.CreateTemp("", "wagate-media-*")
	if err != nil {
		return nil, "", fmt.Errorf("media temp file: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// The encrypted file is the plain one plus padding and a MAC.
	capped := &cappedFile{f: f, max: max + 64}
	if err := s.currentClient().DownloadToFile(ctx, msg, capped); err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, "", wagate.Errorf(wagate.ETOOLARGE, "the attachment is over the %d-byte limit", max)
		}
		return nil, "", &wagate.Error{Code: wagate.EUPSTREAM, Messages: []string{"could not download the attachment from WhatsApp"}, Err: err}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, "", err
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, "", fmt.Errorf("read downloaded media: %w", err)
	}
	if int64(len(data)) > max {
		return nil, "", wagate.Errorf(wagate.ETOOLARGE, "the attachment is over the %d-byte limit", max)
	}
	return data, fileName(ref), nil
}

// downloadable rebuilds the media protobuf of a stored message.
func downloadable(content json.RawMessage) (whatsmeow.DownloadableMessage, mediaRef, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(content, &fields); err != nil {
		return nil, mediaRef{}, wagate.Errorf(wagate.EUNPROCESSABLE, "the message has no attachment")
	}
	for _, kind := range []string{"audioMessage", "imageMessage", "videoMessage", "ptvMessage", "documentMessage", "stickerMessage"} {
		raw, ok := fields[kind]
		if !ok {
			continue
		}
		var r mediaRef
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, r, fmt.Errorf("stored %s: %w", kind, err)
		}
		if r.DirectPath == "" && r.URL == "" {
			break
		}
		length, _ := strconv.ParseUint(r.FileLength, 10, 64)
		url, path, ln := proto.String(r.URL), proto.String(r.DirectPath), proto.Uint64(length)
		switch kind {
		case "audioMessage":
			return &waE2E.AudioMessage{URL: url, DirectPath: path, MediaKey: r.MediaKey, FileEncSHA256: r.FileEncSha256, FileSHA256: r.FileSha256, FileLength: ln}, r, nil
		case "imageMessage":
			return &waE2E.ImageMessage{URL: url, DirectPath: path, MediaKey: r.MediaKey, FileEncSHA256: r.FileEncSha256, FileSHA256: r.FileSha256, FileLength: ln}, r, nil
		case "videoMessage", "ptvMessage":
			return &waE2E.VideoMessage{URL: url, DirectPath: path, MediaKey: r.MediaKey, FileEncSHA256: r.FileEncSha256, FileSHA256: r.FileSha256, FileLength: ln}, r, nil
		case "documentMessage":
			return &waE2E.DocumentMessage{URL: url, DirectPath: path, MediaKey: r.MediaKey, FileEncSHA256: r.FileEncSha256, FileSHA256: r.FileSha256, FileLength: ln}, r, nil
		case "stickerMessage":
			return &waE2E.StickerMessage{URL: url, DirectPath: path, MediaKey: r.MediaKey, FileEncSHA256: r.FileEncSha256, FileSHA256: r.FileSha256, FileLength: ln}, r, nil
		}
	}
	return nil, mediaRef{}, wagate.Errorf(wagate.EUNPROCESSABLE, "the message has no attachment")
}

// fileName is the document's own name, or "media" with the extension of
// its type (voice notes are Ogg Opus), which transcription APIs go by.
func fileName(r mediaRef) string {
	if r.FileName != "" {
		return r.FileName
	}
	mt, _, _ := mime.ParseMediaType(r.Mimetype)
	switch mt {
	case "audio/ogg":
		return "media.ogg"
	case "audio/mpeg":
		return "media.mp3"
	case "audio/mp4":
		return "media.m4a"
	}
	if exts, _ := mime.ExtensionsByType(mt); len(exts) > 0 {
		return "media" + exts[0]
	}
	if _, sub, ok := strings.Cut(mt, "/"); ok && sub != "" {
		return "media." + sub
	}
	return "media"
}

var errTooLarge = errors.New("attachment over the size limit")

// cappedFile is a whatsmeow.File that refuses to grow past max, so a
// download stops there instead of filling the disk. It deliberately has no
// ReadFrom, which would let io.Copy bypass Write.
type cappedFile struct {
	f   *os.File
	max int64
}

func (c *cappedFile) Read(p []byte) (int, error)                { return c.f.Read(p) }
func (c *cappedFile) ReadAt(p []byte, off int64) (int, error)   { return c.f.ReadAt(p, off) }
func (c *cappedFile) Seek(off int64, whence int) (int64, error) { return c.f.Seek(off, whence) }
func (c *cappedFile) Stat() (os.FileInfo, error)                { return c.f.Stat() }
func (c *cappedFile) Truncate(size int64) error                 { return c.f.Truncate(size) }
func (c *cappedFile) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > c.max {
		return 0, errTooLarge
	}
	return c.f.WriteAt(p, off)
}

func (c *cappedFile) Write(p []byte) (int, error) {
	pos, err := c.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	if pos+int64(len(p)) > c.max {
		return 0, errTooLarge
	}
	return c.f.Write(p)
}
