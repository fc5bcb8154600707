package fakeai

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
)

var errNotMultipart = errors.New("not multipart/form-data")

func prepareTranscription(req *Request) {
	mediaType, params, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		req.decodeErr = errNotMultipart
		return
	}
	req.Form = url.Values{}
	mr := multipart.NewReader(bytes.NewReader(req.Raw), params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			req.decodeErr = fmt.Errorf("reading multipart form: %w", err)
			return
		}
		data, err := io.ReadAll(part)
		if err != nil {
			req.decodeErr = fmt.Errorf("reading form part %q: %w", part.FormName(), err)
			return
		}
		if part.FormName() == "file" {
			// Non-nil even when empty, so an empty upload is told apart
			// from a missing one.
			req.FileName, req.File, req.FileSize = part.FileName(), append([]byte{}, data...), len(data)
			continue
		}
		req.Form.Add(part.FormName(), string(data))
	}
	req.Model = req.Form.Get("model")
}

var audioFormats = map[string]bool{"json": true, "text": true, "srt": true, "verbose_json": true, "vtt": true}

func (s *Server) validateTranscription(req *Request) (apiError, bool) {
	switch {
	case errors.Is(req.decodeErr, errNotMultipart):
		return apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf(
			"Invalid Content-Type header (%s), expected multipart/form-data.", req.Header.Get("Content-Type"))}, false
	case req.decodeErr != nil:
		return apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf(
			"Could not parse multipart form: %v", req.decodeErr)}, false
	case req.File == nil:
		return missingParam("file"), false
	case req.Model == "":
		return missingParam("model"), false
	case req.FileSize == 0:
		return apiError{Status: http.StatusBadRequest, Param: "file", Code: "audio_too_short",
			Message: "Audio file is too short. Minimum audio length is 0.1 seconds."}, false
	}
	format := transcriptFormat(req)
	if !audioFormats[format] {
		return apiError{Status: http.StatusBadRequest, Param: "response_format", Code: "invalid_value",
			Message: fmt.Sprintf("Invalid value: '%s'. Supported values are: 'json', 'text', 'srt', "+
				"'verbose_json', and 'vtt'.", format)}, false
	}
	// The gpt-4o transcription models only produce json and text.
	if strings.HasPrefix(req.Model, "gpt-4o") && format != "json" && format != "text" {
		return apiError{Status: http.StatusBadRequest, Param: "response_format", Code: "unsupported_value",
			Message: fmt.Sprintf("response_format '%s' is not compatible with model '%s'. "+
				"Use 'json' or 'text' instead.", format, req.Model)}, false
	}
	return s.checkModel(req.Model)
}

func transcriptFormat(req *Request) string {
	if f := req.Form.Get("response_format"); f != "" {
		return f
	}
	return "json"
}

func (s *Server) serveTranscription(w http.ResponseWriter, r *http.Request, req *Request) {
	if e, ok := s.validateTranscription(req); !ok {
		writeError(w, e)
		return
	}
	out, ok := s.answer(w, r, &s.transcripts, req)
	if !ok {
		return
	}
	text := out.text
	if out.kind != kindReply {
		text = s.transcribe(req.File, req.FileName)
	}
	s.update(req, func(q *Request) { q.Reply = text })

	switch transcriptFormat(req) {
	case "text":
		writeText(w, "text/plain; charset=utf-8", text)
	case "srt":
		writeText(w, "text/plain; charset=utf-8", "1\n00:00:00,000 --> 00:00:01,000\n"+text+"\n\n")
	case "vtt":
		writeText(w, "text/vtt; charset=utf-8", "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n"+text+"\n\n")
	case "verbose_json":
		language := req.Form.Get("language")
		if language == "" {
			language = "english" // what "auto-detect" detects here
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"task": "transcribe", "language": language, "duration": 1.0, "text": text,
			"segments": []any{map[string]any{
				"id": 0, "seek": 0, "start": 0.0, "end": 1.0, "text": text, "tokens": []int{},
				"temperature": 0.0, "avg_logprob": 0.0, "compression_ratio": 1.0, "no_speech_prob": 0.0,
			}},
		})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"text": text})
	}
}

func writeText(w http.ResponseWriter, contentType, body string) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, body)
}
