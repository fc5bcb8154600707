package bots

import (
	"context"
	"log/slog"
	"time"

	"github.com/wagate/wagate/store"
)

// step decides on the chat's pending messages once. It returns how long to
// wait before the next step (a debounce window still open), or a negative
// duration when nothing is pending: none were, or it decided on every one
// it read. A message stored since then wakes the worker (Notify), so the
// worker does not read the chat again only to find that it has answered
// everything: that read was a third of the engine's statements per message.
func (e *Engine) step(ctx context.Context, key store.Chat, log *slog.Logger) (time.Duration, error) {
	c, err := e.loadChat(ctx, key.InstanceID, key.Key)
	if err != nil || c == nil {
		return -1, err
	}
	if e.cfg.Owns != nil && !e.cfg.Owns(c.inst, c.jid) {
		return 0, store.ErrNotOwner
	}
	if len(c.parts) > 0 {
		// The rest of a reply interrupted by a restart.
		return 0, c.deliver(ctx)
	}
	now := time.Now()
	if _, err := c.checkExpiry(ctx, now); err != nil {
		return 0, err
	}
	pending := c.pending
	if len(pending) == 0 {
		return -1, nil
	}
	var (
		turn  []*store.Message
		botID string
	)
	for _, m := range pending {
		d, err := c.decide(ctx, m, now)
		if err != nil {
			return 0, err
		}
		switch {
		case d.join:
			turn, botID = append(turn, m), d.botID
			if *c.bot(botID).eff.DebounceTime == 0 {
				// Without debounce each message is its own turn; the
				// rest wait for the answer, in order.
				if err := c.answer(ctx, c.bot(botID), turn); err != nil || m != pending[len(pending)-1] {
					return 0, err
				}
				return -1, nil
			}
		case d.drop:
			// A human took over, or the customer said the closing keyword:
			// what was gathered for the bot is not answered.
			if err := c.mark(ctx, append(turn, m), store.MessageIgnored, d.reason, d.botID); err != nil {
				return 0, err
			}
			turn = nil
		default:
			if err := c.mark(ctx, []*store.Message{m}, store.MessageIgnored, d.reason, d.botID); err != nil {
				return 0, err
			}
		}
	}
	if len(turn) == 0 {
		return -1, nil
	}
	b := c.bot(botID)
	if secs := *b.eff.DebounceTime; secs > 0 {
		window := time.Duration(secs) * time.Second
		deadline := turn[len(turn)-1].CreatedAt.Add(window)
		if capped := turn[0].CreatedAt.Add(5 * window); capped.Before(deadline) {
			deadline = capped
		}
		if wait := deadline.Sub(now); wait > 0 {
			if c.sessionDirty {
				// The session's activity counts from this message, for
				// expiry while the window is open.
				if err := c.e.store.TouchSession(ctx, c.session); err != nil {
					return 0, err
				}
				c.sessionDirty = false
			}
			return wait, nil
		}
	}
	if err := c.answer(ctx, b, turn); err != nil {
		return 0, err
	}
	return -1, nil
}
