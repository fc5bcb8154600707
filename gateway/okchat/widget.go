package okchat

import (
	"maps"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
)

// UpdateChatWidget is PATCH /api/external/chatbot/{chatbotId}/chat-widget:
// the body is merged into chat_widget_config, and settings.snippet follows
// it (all but the language, which is the widget's own).
func (h *Handlers) UpdateChatWidget(c echo.Context) error {
	body, err := readObject(c)
	if err != nil {
		return err
	}
	var p wagate.Problems
	checkFields(&p, "", body, true, widgetChecks(&p))
	slices.Sort(p)
	if err := p.Err(); err != nil {
		return err
	}
	cb := api.ChatbotOf(c)
	widget := cb.ChatWidget
	if widget == nil {
		snippet, _ := cb.Settings["snippet"].(map[string]any)
		widget = maps.Clone(snippet)
	}
	cb.ChatWidget = api.MergePatch(maps.Clone(widget), body)
	snippet := maps.Clone(cb.ChatWidget)
	delete(snippet, "language")
	cb.Settings = cloneSettings(cb)
	cb.Settings["snippet"] = snippet
	cb.UpdatedAt = stamp()
	if err := h.store.UpdateChatbot(c.Request().Context(), cb); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"chat_widget_config": cb.ChatWidget, "message": "Chat widget config updated successfully"})
}

// UpdateVoiceAgent is PATCH /api/external/chatbot/{chatbotId}/voice-agent:
// the body is merged into voice_widget_config.
func (h *Handlers) UpdateVoiceAgent(c echo.Context) error {
	body, err := readObject(c)
	if err != nil {
		return err
	}
	var p wagate.Problems
	checkVoiceWidget(&p, body)
	slices.Sort(p)
	if err := p.Err(); err != nil {
		return err
	}
	cb := api.ChatbotOf(c)
	cb.VoiceWidget = api.MergePatch(maps.Clone(cb.VoiceWidget), body)
	cb.UpdatedAt = stamp()
	if err := h.store.UpdateChatbot(c.Request().Context(), cb); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"voice_widget_config": cb.VoiceWidget, "message": "Voice widget config updated successfully"})
}
