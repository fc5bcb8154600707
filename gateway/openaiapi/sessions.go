package openaiapi

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/evolution"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store"
)

// Reasons a session was paused or closed, as reported in events and views.
const (
	ReasonAPI        = "api"
	ReasonBotDeleted = "bot deleted"
)

// sessionEvent is the data of openai.session.* events.
func sessionEvent(s *store.Session, reason string) map[string]string {
	return map[string]string{
		"sessionId": s.ID, "botId": s.BotID, "remoteJid": s.RemoteJID, "pushName": s.PushName,
		"status": s.Status, "reason": reason,
	}
}

// ChangeStatus sets the status of a chat's session in this instance only
// (Evolution's acts on every instance): opened resumes a paused session, or
// opens one for botId; paused holds the bot until reopened; closed ends the
// live session (kept for the record when the bot's keepOpen says so);
// delete removes the chat's sessions and messages (with botId, only that
// bot's sessions and the messages it handled or sent).
func (h *Handlers) ChangeStatus(c echo.Context) error {
	var req struct {
		RemoteJID string `json:"remoteJid"`
		Status    string `json:"status"`
		BotID     string `json:"botId"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	inst := api.InstanceOf(c)
	jid, problem := evolution.NormalizeJID(req.RemoteJID)
	if problem != "" {
		// A chat an older version stored under a key no rule accepts can
		// still have its sessions changed and be deleted, by that key.
		key, ok, err := h.lookupChat(c.Request().Context(), inst.ID, req.RemoteJID, "remoteJid")
		switch {
		case ok:
			jid, problem = key, ""
		case err != nil && wagate.ErrorCode(err) != wagate.EINVALID:
			return err
		}
	}
	if problem != "" {
		p.Add("remoteJid", problem)
	}
	req.RemoteJID = jid
	switch req.Status {
	case store.SessionOpened, store.SessionPaused, store.SessionClosed, "delete":
	default:
		p.Add("status", `must be "opened", "paused", "closed" or "delete"`)
	}
	if err := p.Err(); err != nil {
		return err
	}
	var (
		result                  *store.Session
		deleted, deletedHistory int64
	)
	err := h.outbox.Tx(c.Request().Context(), func(ctx context.Context) error {
		var bot *store.Bot
		if req.BotID != "" {
			var err error
			if bot, err = h.store.Bot(ctx, inst.ID, req.BotID); wagate.ErrorCode(err) == wagate.ENOTFOUND {
				return wagate.Invalid("botId", "no bot with this id in this instance")
			} else if err != nil {
				return err
			}
		}
		live, err := h.store.LiveSession(ctx, inst.ID, req.RemoteJID)
		if err != nil {
			return err
		}
		if live != nil && bot != nil && live.BotID != bot.ID {
			return wagate.FieldError(wagate.ECONFLICT, "botId", "the chat's live session belongs to bot "+live.BotID)
		}
		now := stamp()
		if req.Status == "delete" {
			if deleted, err = h.store.DeleteChatSessions(ctx, inst.ID, req.RemoteJID, req.BotID); err != nil {
				return err
			}
			// The chat's history goes with its sessions: all of it, or
			// with a botId what that bot handled and said.
			if deletedHistory, err = h.store.DeleteChatHistory(ctx, inst.ID, req.RemoteJID, req.BotID); err != nil {
				return err
			}
			if live != nil {
				live.Status = store.SessionClosed
				return h.outbox.Emit(ctx, inst, webhook.SessionClosed, sessionEvent(live, ReasonAPI))
			}
			return nil
		}
		if live == nil {
			if req.Status != store.SessionOpened || bot == nil {
				return wagate.FieldError(wagate.ENOTFOUND, "remoteJid", "the chat has no live session; send status opened with a botId to open one")
			}
			if !bot.Enabled {
				return wagate.FieldError(wagate.EUNPROCESSABLE, "botId", "the bot is disabled")
			}
			result = &store.Session{
				ID: store.NewID(), InstanceID: inst.ID, BotID: bot.ID, RemoteJID: req.RemoteJID,
				Status: store.SessionOpened, Reason: ReasonAPI, CreatedAt: now, UpdatedAt: now,
			}
			if err := h.store.CreateSession(ctx, result); err != nil {
				return err
			}
			return h.outbox.Emit(ctx, inst, webhook.SessionOpened, sessionEvent(result, ReasonAPI))
		}
		if live.Status == req.Status && live.PausedUntil.IsZero() {
			result = live // nothing changes, nothing to report
			return nil
		}
		result = live
		result.UpdatedAt = now
		result.PausedUntil = time.Time{}
		result.Reason = ReasonAPI
		event := webhook.SessionOpened
		switch req.Status {
		case store.SessionOpened:
			result.Status = store.SessionOpened
		case store.SessionPaused:
			result.Status, event = store.SessionPaused, webhook.SessionPaused
		case store.SessionClosed:
			result.Status, result.CloseReason, result.ClosedAt, event = store.SessionClosed, ReasonAPI, now, webhook.SessionClosed
			keep, err := h.keepOpen(ctx, inst, result.BotID)
			if err != nil {
				return err
			}
			if !keep {
				if err := h.store.DeleteSession(ctx, inst.ID, result.ID); err != nil {
					return err
				}
				return h.outbox.Emit(ctx, inst, event, sessionEvent(result, ReasonAPI))
			}
		}
		if err := h.store.UpdateSession(ctx, result); err != nil {
			return err
		}
		return h.outbox.Emit(ctx, inst, event, sessionEvent(result, ReasonAPI))
	})
	if err != nil {
		return err
	}
	resp := map[string]any{"bot": map[string]string{"remoteJid": req.RemoteJID, "status": req.Status}}
	if req.Status == "delete" {
		resp["deleted"], resp["deletedMessages"] = deleted, deletedHistory
	} else {
		resp["session"] = api.ViewSession(result)
	}
	return c.JSON(http.StatusOK, resp)
}

// keepOpen is the bot's effective keepOpen now.
func (h *Handlers) keepOpen(ctx context.Context, inst *store.Instance, botID string) (bool, error) {
	bot, err := h.store.Bot(ctx, inst.ID, botID)
	if err != nil {
		return false, err
	}
	settings, err := h.openAISettings(ctx, inst)
	if err != nil {
		return false, err
	}
	return *bots.EffectiveFor(bot, settings).KeepOpen, nil
}

// FetchSessions lists a bot's sessions, newest first, paginated.
func (h *Handlers) FetchSessions(c echo.Context) error {
	inst := api.InstanceOf(c)
	ctx := c.Request().Context()
	bot, err := h.store.Bot(ctx, inst.ID, c.Param("botId"))
	if err != nil {
		return err
	}
	f := store.SessionFilter{BotID: bot.ID, RemoteJID: c.QueryParam("remoteJid"), Status: c.QueryParam("status")}
	switch f.Status {
	case "", store.SessionOpened, store.SessionPaused, store.SessionClosed:
	default:
		return wagate.Invalid("status", `must be "opened", "paused" or "closed"`)
	}
	if f.Limit, err = api.PageLimit(c.QueryParam("limit")); err != nil {
		return err
	}
	if cur := c.QueryParam("cursor"); cur != "" {
		if f.Before, err = parseSessionCursor(cur); err != nil {
			return err
		}
	}
	limit := f.Limit
	f.Limit++
	list, err := h.store.ListSessions(ctx, inst.ID, f)
	if err != nil {
		return err
	}
	var next *string
	if len(list) > limit {
		list = list[:limit]
		last := list[limit-1]
		cur := base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(last.CreatedAt.UnixMilli(), 10) + ":" + last.ID))
		next = &cur
	}
	data := make([]api.SessionView, 0, len(list))
	for _, s := range list {
		data = append(data, api.ViewSession(s))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": data, "nextCursor": next})
}

func parseSessionCursor(cur string) (*store.SessionCursor, error) {
	bad := wagate.Invalid("cursor", "not a cursor returned by this route")
	raw, err := base64.RawURLEncoding.DecodeString(cur)
	if err != nil {
		return nil, bad
	}
	ms, id, ok := strings.Cut(string(raw), ":")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || id == "" {
		return nil, bad
	}
	return &store.SessionCursor{CreatedAt: time.UnixMilli(n), ID: id}, nil
}
