// Package gateway is wagate's server: the Evolution-compatible HTTP API,
// authentication, error mapping, the instance channels and the webhook
// outbox that reports every change.
package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/fetch"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/gateway/console"
	"github.com/wagate/wagate/gateway/evolution"
	"github.com/wagate/wagate/gateway/okchat"
	"github.com/wagate/wagate/gateway/openaiapi"
	"github.com/wagate/wagate/gateway/webchat"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/gateway/whatsapp"
	"github.com/wagate/wagate/knowledge"
	"github.com/wagate/wagate/store"
)

// Gateway wires the store, the channels and the webhook outbox behind the
// HTTP API.
type Gateway struct {
	cfg      config.Config
	store    *store.Store
	log      *slog.Logger
	disp     *webhook.Dispatcher
	outbox   *webhook.Outbox
	channels map[string]channel.Channel // by integration
	whatsapp *whatsapp.Channel
	clients  bots.Clients
	engine   *bots.Engine
	metrics  *metrics
	tokens   tokenCache
	retain   *retention
	orgs     *orgDeleter
	fetch    *fetch.Client
	okchat   *okchat.Handlers
	openai   *openaiapi.Handlers
	webchat  *webchat.Channel
	kb       *knowledge.Service
	auth     *console.Auth
	console  *console.Console
	watch    *instanceWatch // the console's live instance pages
	// bodyLimits raise the request body limit of routes that take files.
	bodyLimits map[string]int64
	apiKey     keyDigest
	echo       *echo.Echo
	// replicas is this process's part in a group of replicas sharing a
	// PostgreSQL database; nil on SQLite, where it owns every instance.
	replicas *replicaSet
}

// modelTransport is the connection pool of model calls, which run up to
// calls at a time per credential. http.DefaultTransport keeps two idle
// connections per host: every call beyond the second dialled a connection
// (over HTTPS with its TLS handshake) and closed it afterwards, which under
// load was more of the gateway's CPU than the calls' own requests.
func modelTransport(calls int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0 // no bound across hosts; each host's below
	t.MaxIdleConnsPerHost = max(calls, 2)
	return t
}

// New returns a gateway over st. cfg must have its keys resolved.
func New(cfg config.Config, st *store.Store, log *slog.Logger, opts ...Option) *Gateway {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	g := &Gateway{}
	// The live-conversations gauge reads the engine, made below.
	m := newMetrics(func() int { return g.engine.Conversations() }, st.Stats, st.InstanceOwners)
	disp := webhook.NewDispatcher(st, webhook.Config{
		ServerURL:  cfg.ServerURL,
		Timeout:    cfg.WebhookTimeout,
		RetryBase:  cfg.WebhookRetryBase,
		MaxBackoff: cfg.WebhookMaxBackoff,
		MaxAge:     cfg.WebhookMaxAge,
		OnAttempt:  m.webhookAttempt,
		Owns:       func(lane string) bool { return g.replicas.owns(lane) },
		Elsewhere:  g.wakeLaneElsewhere,
	}, log.With("component", "webhook"))
	fetcher := fetch.New(fetch.Config{AllowPrivate: cfg.AllowPrivateFetch})
	*g = Gateway{
		fetch:   fetcher,
		metrics: m,
		cfg:     cfg,
		store:   st,
		log:     log,
		disp:    disp,
		outbox:  webhook.NewOutbox(st, disp),
		channels: map[string]channel.Channel{
			store.IntegrationEvolution: evolution.Channel{Fetch: fetcher},
		},
		apiKey: digest(cfg.APIKey),
		watch:  newInstanceWatch(),
		clients: bots.Clients{DefaultBaseURL: cfg.OpenAIBaseURL,
			HTTP:   &http.Client{Timeout: time.Minute, Transport: modelTransport(cfg.MaxConcurrentModelCalls)},
			Limits: bots.NewLimits(cfg.MaxConcurrentModelCalls, m.limitObserver())},
	}
	m.limits.limits = g.clients.Limits
	g.webchat = webchat.New(st, g, g.outbox, fetcher, webchat.Config{
		ServerURL: cfg.ServerURL, Secret: visitorSecret(cfg.SecretKey), Wait: webchatWait(cfg),
		LockChat:  lockChat(st),
		Published: func(instanceID, messageID string) { g.replicas.published(instanceID, messageID) },
	}, log.With("component", "webchat"))
	g.channels[store.IntegrationWebchat] = g.webchat
	g.kb = knowledge.New(st, fetcher, knowledge.Config{
		NewClient: g.clients.For,
		Workers:   cfg.KnowledgeWorkers,
		Limits: store.KnowledgeLimits{MaxSources: cfg.KnowledgeMaxSources, MaxBytes: cfg.KnowledgeMaxBytes,
			MaxChunks: cfg.KnowledgeMaxChunks},
		MaxFetchBytes: cfg.KnowledgeMaxFileBytes,
		Lease:         cfg.KnowledgeLease,
		RetryBase:     cfg.ModelRetryBase,
	}, log.With("component", "knowledge"))
	g.engine = bots.NewEngine(st, g.outbox, g, g.fetchMedia, g.signFunctionCall, g.clients, bots.Config{
		HistoryTokens:   cfg.HistoryTokens,
		ModelTimeout:    cfg.ModelTimeout,
		TranscribeModel: cfg.TranscribeModel,
		RetryBase:       cfg.ModelRetryBase,
		FunctionTimeout: 10 * time.Second,
		SweepEvery:      cfg.SessionSweepEach,
		OnModelCall:     g.metrics.modelCall,
		Visitors:        g.webchat,
		Knowledge:       g.kb,
		Owns:            g.runsBots,
		Fence:           g.fence,
	}, log.With("component", "bots"))
	g.whatsapp = whatsapp.New(g, st, log.With("component", "whatsapp"),
		whatsapp.Config{QRTerminal: cfg.QRTerminal, NewClient: o.whatsAppClient,
			Owns: func(id string) bool { return g.replicas.owns(id) }})
	g.channels[store.IntegrationWhatsAppBaileys] = g.whatsapp
	g.channels[store.IntegrationWhatsApp] = g.whatsapp
	g.orgs = &orgDeleter{g: g, kick: make(chan struct{}, 1)}
	g.okchat = okchat.New(st, log.With("component", "okchat"), cfg.ServerURL, g.clients.BaseURL).WithWebchat(g.webchat)
	g.okchat.SetKnowledge(g.kb, cfg.KnowledgeMaxFileBytes)
	g.openai = openaiapi.New(st, g.outbox, log, g.clients, g.lookupChat)
	g.bodyLimits = bodyLimits(cfg)
	now := o.now
	if now == nil {
		now = time.Now
	}
	g.auth = console.NewAuth(st, now, console.DefaultLimits, log.With("component", "console"))
	g.console = console.New(g.auth, st, g, log.With("component", "console")).WithChatbots(g.okchat).
		WithInstanceMiddleware(g.forwardConsole)
	g.retain = newRetention(st, cfg.MessageRetentionDays, cfg.RetentionSweepEach, log.With("component", "retention"))
	g.replicas = newReplicaSet(g)
	g.echo = g.routes()
	return g
}

// Handler returns the HTTP API.
func (g *Gateway) Handler() http.Handler { return g.echo }

// Run resumes pending webhook deliveries and serves the API on ln until ctx
// is done; then it stops accepting requests, lets those in flight finish
// (up to the shutdown timeout) and stops delivery.
func (g *Gateway) Run(ctx context.Context, ln net.Listener) error {
	if err := g.disp.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return err
	}
	if err := g.engine.Start(ctx); err != nil {
		g.disp.Stop()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	// Paired WhatsApp numbers reconnect in the background.
	if err := g.whatsapp.Start(ctx); err != nil {
		g.engine.Stop()
		g.disp.Stop()
		if ctx.Err() != nil {
			return nil // stopped while starting, as above
		}
		return err
	}
	if err := g.replicas.start(ctx, ln.Addr()); err != nil {
		g.whatsapp.Stop()
		g.engine.Stop()
		g.disp.Stop()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	g.retain.Start(ctx)
	g.orgs.start(ctx)
	g.kb.Start(ctx)
	// Connections that have not sent a request yet (clients open spares)
	// would hold up a graceful shutdown for 5 s; they are closed at once.
	var fresh sync.Map
	srv := &http.Server{
		Handler:           g.echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateNew {
				fresh.Store(c, struct{}{})
			} else {
				fresh.Delete(c)
			}
		},
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	g.log.Info("wagate is listening", "addr", ln.Addr().String())

	var err error
	select {
	case err = <-served:
	case <-ctx.Done():
		g.log.Info("shutting down")
		g.watch.stop()
		sctx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownTimeout)
		shut := make(chan error, 1)
		go func() { shut <- srv.Shutdown(sctx) }()
		fresh.Range(func(c, _ any) bool {
			c.(net.Conn).Close()
			return true
		})
		err = <-shut
		cancel()
	}
	g.kb.Stop()
	g.retain.Stop()
	g.orgs.stop()
	g.replicas.stop()
	g.whatsapp.Stop()
	g.engine.Stop()
	g.disp.Stop()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (g *Gateway) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = g.handleError
	e.Use(g.requestID, g.accessLog, middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			g.log.Error("panic", "request_id", c.Response().Header().Get(echo.HeaderXRequestID), "error", err, "stack", string(stack))
			return err
		},
	}), g.limitBody)

	e.GET("/", g.root)
	e.GET("/healthz", g.healthz)
	e.GET("/readyz", g.readyz)
	g.apiDocRoutes(e)

	// Every API route authenticates first; scoped routes then resolve the
	// instance in the path, which is the request's only scope.
	auth := func(method, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
		m = append([]echo.MiddlewareFunc{g.authenticate}, m...)
		if strings.Contains(path, ":instance") {
			// After scoped, which resolves the instance.
			m = append(m, g.forwardToOwner)
		}
		e.Add(method, path, h, m...)
	}
	auth(http.MethodPost, "/instance/create", g.createInstance, g.orgScoped)
	auth(http.MethodGet, "/instance/fetchInstances", g.fetchInstances)
	auth(http.MethodGet, "/instance/connectionState/:instance", g.connectionState, g.scoped)
	auth(http.MethodGet, "/instance/connect/:instance", g.connectInstance, g.scoped)
	auth(http.MethodGet, "/instance/qrcode/:instance", g.qrCode, g.scoped)
	auth(http.MethodPost, "/instance/restart/:instance", g.restartInstance, g.scoped)
	auth(http.MethodDelete, "/instance/logout/:instance", g.logoutInstance, g.scoped)
	auth(http.MethodDelete, "/instance/delete/:instance", g.deleteInstance, g.scoped)
	auth(http.MethodPost, "/instance/rotateToken/:instance", g.rotateToken, g.scoped)

	auth(http.MethodPost, "/webhook/set/:instance", g.setWebhook, g.scoped)
	auth(http.MethodGet, "/webhook/find/:instance", g.findWebhook, g.scoped)
	auth(http.MethodPost, "/webhook/rotateSecret/:instance", g.rotateWebhookSecret, g.scoped)
	auth(http.MethodGet, "/webhook/deliveries/:instance", g.listDeliveries, g.scoped)
	auth(http.MethodPost, "/webhook/deliveries/:instance/:deliveryId/retry", g.retryDelivery, g.scoped)
	auth(http.MethodPost, "/webhook/evolution", g.evolutionInbound)

	auth(http.MethodPost, "/message/sendText/:instance", g.sendText, g.scoped)
	auth(http.MethodPost, "/message/sendMedia/:instance", g.sendMedia, g.scoped)
	auth(http.MethodPost, "/message/sendWhatsAppAudio/:instance", g.sendWhatsAppAudio, g.scoped)
	auth(http.MethodPost, "/message/sendSticker/:instance", g.sendSticker, g.scoped)
	auth(http.MethodPost, "/message/sendLocation/:instance", g.sendLocation, g.scoped)
	auth(http.MethodPost, "/message/sendContact/:instance", g.sendContact, g.scoped)
	auth(http.MethodPost, "/message/sendReaction/:instance", g.sendReaction, g.scoped)
	auth(http.MethodPost, "/message/sendPoll/:instance", g.sendPoll, g.scoped)
	auth(http.MethodPost, "/message/sendList/:instance", g.sendList, g.scoped)
	auth(http.MethodPost, "/message/sendButtons/:instance", g.sendButtons, g.scoped)
	auth(http.MethodPost, "/message/sendStatus/:instance", g.sendStatus, g.scoped)

	auth(http.MethodPost, "/chat/findMessages/:instance", g.findMessages, g.scoped)
	auth(http.MethodPost, "/chat/findChats/:instance", g.findChats, g.scoped)
	auth(http.MethodPost, "/chat/findContacts/:instance", g.findContacts, g.scoped)
	auth(http.MethodPost, "/chat/findStatusMessage/:instance", g.findStatusMessage, g.scoped)
	auth(http.MethodPost, "/chat/getBase64FromMediaMessage/:instance", g.getBase64FromMediaMessage, g.scoped)
	auth(http.MethodPost, "/chat/whatsappNumbers/:instance", g.whatsappNumbers, g.scoped)
	auth(http.MethodPost, "/chat/markMessageAsRead/:instance", g.markMessageAsRead, g.scoped)
	auth(http.MethodPost, "/chat/archiveChat/:instance", g.archiveChat, g.scoped)
	auth(http.MethodPost, "/chat/markChatUnread/:instance", g.markChatUnread, g.scoped)
	auth(http.MethodDelete, "/chat/deleteMessageForEveryone/:instance", g.deleteMessageForEveryone, g.scoped)
	auth(http.MethodPost, "/chat/updateMessage/:instance", g.updateMessage, g.scoped)
	auth(http.MethodPut, "/chat/updateMessage/:instance", g.updateMessage, g.scoped)
	auth(http.MethodPost, "/chat/sendPresence/:instance", g.sendPresence, g.scoped)
	auth(http.MethodPost, "/chat/updateBlockStatus/:instance", g.updateBlockStatus, g.scoped)
	auth(http.MethodPost, "/chat/fetchProfilePictureUrl/:instance", g.fetchProfilePictureURL, g.scoped)
	auth(http.MethodPost, "/settings/set/:instance", g.setSettings, g.scoped)
	auth(http.MethodGet, "/settings/find/:instance", g.findSettings, g.scoped)
	auth(http.MethodPost, "/instance/setPresence/:instance", g.setInstancePresence, g.scoped)
	auth(http.MethodGet, "/conversations/:instance", g.listConversations, g.scoped)
	auth(http.MethodGet, "/conversations/:instance/:remoteJid", g.getConversation, g.scoped)
	auth(http.MethodGet, "/conversations/:instance/:remoteJid/messages", g.listChatMessages, g.scoped)

	oa := g.openai
	auth(http.MethodPost, "/openai/creds/:instance", oa.CreateCreds, g.scoped)
	auth(http.MethodGet, "/openai/creds/:instance", oa.ListCreds, g.scoped)
	auth(http.MethodDelete, "/openai/creds/:credsId/:instance", oa.DeleteCreds, g.scoped)
	auth(http.MethodPost, "/openai/create/:instance", oa.CreateBot, g.scoped)
	auth(http.MethodGet, "/openai/find/:instance", oa.FindBots, g.scoped)
	auth(http.MethodGet, "/openai/fetch/:botId/:instance", oa.FetchBot, g.scoped)
	auth(http.MethodPut, "/openai/update/:botId/:instance", oa.UpdateBot, g.scoped)
	auth(http.MethodPatch, "/openai/update/:botId/:instance", oa.UpdateBot, g.scoped)
	auth(http.MethodDelete, "/openai/delete/:botId/:instance", oa.DeleteBot, g.scoped)
	auth(http.MethodPost, "/openai/settings/:instance", oa.SaveSettings, g.scoped)
	auth(http.MethodGet, "/openai/fetchSettings/:instance", oa.FetchSettings, g.scoped)
	auth(http.MethodPost, "/openai/changeStatus/:instance", oa.ChangeStatus, g.scoped)
	auth(http.MethodGet, "/openai/fetchSessions/:botId/:instance", oa.FetchSessions, g.scoped)
	auth(http.MethodPost, "/openai/ignoreJid/:instance", oa.IgnoreJid, g.scoped)
	auth(http.MethodGet, "/openai/getModels/:instance", oa.GetModels, g.scoped)
	g.organizationRoutes(auth)
	g.consoleRoutes(e, auth)
	g.inboxRoutes(auth)
	g.console.Routes(e)
	g.metricsRoutes(e, auth)
	g.webchat.Routes(e)
	e.GET(okchat.AvatarPath+":file", g.okchat.ServeAvatar)
	e.HEAD(okchat.AvatarPath+":file", g.okchat.ServeAvatar)
	return e
}

// organizationRoutes are the routes of organizations and what they own:
// wagate's /api/v1 and okchat's /api/external.
func (g *Gateway) organizationRoutes(auth func(method, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc)) {
	org := func(method, path string, h echo.HandlerFunc) { auth(method, path, h, g.orgScoped) }
	chatbot := func(method, path string, h echo.HandlerFunc) { auth(method, path, h, g.chatbotScoped(false)) }

	auth(http.MethodPost, "/api/v1/organizations", g.createOrganization, globalOnly)
	auth(http.MethodGet, "/api/v1/organizations", g.listOrganizations, globalOnly)
	auth(http.MethodGet, "/api/v1/organizations/:orgId", g.getOrganization, globalOnly)
	auth(http.MethodDelete, "/api/v1/organizations/:orgId", g.deleteOrganization, globalOnly)
	auth(http.MethodPost, "/api/v1/organizations/:orgId/keys", g.createOrgKey, globalOnly)
	auth(http.MethodDelete, "/api/v1/organizations/:orgId/keys/:keyId", g.deleteOrgKey, globalOnly)

	ok := g.okchat
	org(http.MethodGet, "/api/v1/credentials", ok.ListCredentials)
	org(http.MethodPost, "/api/v1/credentials", ok.CreateCredentials)
	org(http.MethodDelete, "/api/v1/credentials/:id", ok.DeleteCredentials)

	org(http.MethodGet, "/api/v1/chatbots", ok.V1ListChatbots)
	org(http.MethodPost, "/api/v1/chatbots", ok.V1CreateChatbot)
	chatbot(http.MethodGet, "/api/v1/chatbots/:chatbotId", ok.V1GetChatbot)
	chatbot(http.MethodPatch, "/api/v1/chatbots/:chatbotId", ok.V1UpdateChatbot)
	chatbot(http.MethodDelete, "/api/v1/chatbots/:chatbotId", ok.V1DeleteChatbot)
	chatbot(http.MethodPost, "/api/v1/chatbots/:chatbotId/rotate-key", ok.V1RotateKey)

	org(http.MethodGet, "/api/external/chatbots", ok.ListChatbots)
	org(http.MethodPost, "/api/external/chatbots", ok.CreateChatbot)
	org(http.MethodPatch, "/api/external/chatbots", ok.UpdateChatbot)
	chatbot(http.MethodGet, "/api/external/chatbot/:chatbotId", ok.GetChatbot)
	chatbot(http.MethodPatch, "/api/external/chatbot/:chatbotId", ok.UpdateChatbot)
	chatbot(http.MethodDelete, "/api/external/chatbot/:chatbotId", ok.DeleteChatbot)
	chatbot(http.MethodPatch, "/api/external/chatbot/:chatbotId/update-avatar", ok.UpdateAvatar)
	chatbot(http.MethodPatch, "/api/external/chatbot/:chatbotId/chat-widget", ok.UpdateChatWidget)
	chatbot(http.MethodPatch, "/api/external/chatbot/:chatbotId/voice-agent", ok.UpdateVoiceAgent)

	// A chatbot's key may read its conversations.
	runtime := func(method, path string, h echo.HandlerFunc) { auth(method, path, h, g.chatbotScoped(true)) }
	runtime(http.MethodGet, "/api/external/chatbot/:chatbotId/conversations", ok.ListConversations)
	runtime(http.MethodGet, "/api/external/chatbot/:chatbotId/conversations/:sessionId", ok.GetConversation)
	runtime(http.MethodGet, "/api/external/chatbot/:chatbotId/conversations/:sessionId/messages", ok.ListMessages)
	runtime(http.MethodPost, "/api/external/chatbot/:chatbotId/chat", ok.Chat)
	runtime(http.MethodPatch, "/api/external/chatbot/:chatbotId/conversations/:sessionId", ok.UpdateConversation)
	runtime(http.MethodPost, "/api/external/chatbot/:chatbotId/conversations/:sessionId/messages", ok.PostMessage)
	runtime(http.MethodGet, "/api/external/chatbot/:chatbotId/leads", ok.ListLeads)

	// The chatbot's own key may manage and query its knowledge base.
	runtime(http.MethodGet, "/api/external/chatbot/:chatbotId/knowledge-base", ok.ListKnowledge)
	runtime(http.MethodPost, "/api/external/chatbot/:chatbotId/knowledge-base", ok.AddKnowledge)
	runtime(http.MethodPost, "/api/external/chatbot/:chatbotId/knowledge-base/files", ok.AddKnowledgeFiles)
	runtime(http.MethodPatch, "/api/external/chatbot/:chatbotId/knowledge-base", ok.UpdateKnowledge)
	runtime(http.MethodDelete, "/api/external/chatbot/:chatbotId/knowledge-base", ok.DeleteKnowledge)
	runtime(http.MethodPost, "/api/external/chatbot/:chatbotId/query-knowledge", ok.QueryKnowledge)
}

// bodyLimits are the larger body limits of the routes that take files.
func bodyLimits(cfg config.Config) map[string]int64 {
	return map[string]int64{
		"/api/external/chatbot/:chatbotId/update-avatar": okchat.MaxAvatarBytes + 64<<10, // and the form around it
		"/console/chatbots/:id/avatar":                   okchat.MaxAvatarBytes + 64<<10,
		// A few files of the largest size; the form parser spills them to
		// temporary files past 32 MiB rather than holding them in memory.
		"/api/external/chatbot/:chatbotId/knowledge-base/files": 4*cfg.KnowledgeMaxFileBytes + 1<<20,
		"/console/chatbots/:id/knowledge/files":                 4*cfg.KnowledgeMaxFileBytes + 1<<20,
		"/message/sendMedia/:instance":                          mediaBodyLimit,
		"/message/sendWhatsAppAudio/:instance":                  mediaBodyLimit,
		"/message/sendSticker/:instance":                        mediaBodyLimit,
		"/message/sendStatus/:instance":                         mediaBodyLimit,
		// A chat message may carry an image as a data URL.
		"/api/external/chatbot/:chatbotId/chat": webchat.MaxImageBytes*4/3 + 256<<10,
		"/api/public/chatbots/:chatbotId/chat":  webchat.MaxImageBytes*4/3 + 64<<10,
	}
}

// lockChat is the web chat's turn lock across replicas; none on SQLite,
// where the channel's own lock is the only one needed.
func lockChat(st *store.Store) func(ctx context.Context, instanceID, chatKey string) (func(), error) {
	if !st.Postgres() {
		return nil
	}
	return st.LockChat
}

// visitorSecret is the key that signs web chat visitor tokens: derived
// from the master key, so tokens survive restarts and replicas agree.
func visitorSecret(master []byte) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("wagate webchat visitor tokens"))
	return m.Sum(nil)
}

// webchatWait is how long a visitor waits for one answer: every attempt
// of the model call, and some time for the queue before it.
func webchatWait(cfg config.Config) time.Duration {
	return 3*cfg.ModelTimeout + 30*time.Second
}

// stamp is the time stamped on records: UTC at the millisecond precision the
// store keeps, so a record reads back as it was returned.
func stamp() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
