package bots

import (
	"context"
	"sync"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
)

// instanceConfig is what deciding on an instance's chats reads from its
// configuration: the instance, its bot settings, its bots with compiled
// triggers, and the credentials and chatbots used so far. Loading it took three queries
// and a trigger compilation per message; it is now kept while the store's
// configuration version stays the same (store.ConfigVersion), and shared
// by the instance's workers, so nothing in it is modified once built.
type instanceConfig struct {
	version   uint64
	cacheable bool
	inst      *store.Instance
	settings  *store.OpenAISettings
	bots      []*bot

	mu       sync.Mutex
	creds    map[string]*store.Creds
	chatbots map[string]*store.Chatbot
}

// maxCachedConfigs bounds the cache; past it the cache starts over, which
// only costs reloads.
const maxCachedConfigs = 10_000

type configCache struct {
	mu sync.Mutex
	m  map[string]*instanceConfig
}

// config returns the instance's configuration, nil when the instance no
// longer exists.
func (e *Engine) config(ctx context.Context, instanceID string) (*instanceConfig, error) {
	version, cacheable := e.store.ConfigVersion()
	if cacheable {
		e.configs.mu.Lock()
		cfg := e.configs.m[instanceID]
		e.configs.mu.Unlock()
		if cfg != nil && cfg.version == version {
			return cfg, nil
		}
	}
	cfg, err := e.loadConfig(ctx, instanceID)
	if err != nil || !cacheable {
		return cfg, err
	}
	e.configs.mu.Lock()
	defer e.configs.mu.Unlock()
	if cfg == nil {
		delete(e.configs.m, instanceID)
		return nil, nil
	}
	cfg.version, cfg.cacheable = version, true
	if e.configs.m == nil || len(e.configs.m) >= maxCachedConfigs {
		e.configs.m = map[string]*instanceConfig{}
	}
	e.configs.m[instanceID] = cfg
	return cfg, nil
}

func (e *Engine) loadConfig(ctx context.Context, instanceID string) (*instanceConfig, error) {
	inst, err := e.store.InstanceByID(ctx, instanceID)
	if wagate.ErrorCode(err) == wagate.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	settings, err := e.store.OpenAISettings(ctx, instanceID)
	if wagate.ErrorCode(err) == wagate.ENOTFOUND {
		settings = DefaultSettings(instanceID)
	} else if err != nil {
		return nil, err
	}
	list, err := e.store.ListBots(ctx, instanceID)
	if err != nil {
		return nil, err
	}
	cfg := &instanceConfig{inst: inst, settings: settings, creds: map[string]*store.Creds{}, chatbots: map[string]*store.Chatbot{}}
	for _, b := range list {
		tr, err := CompileTrigger(b.TriggerType, b.TriggerOperator, b.TriggerValue)
		if err != nil { // validated at save time; a bot saved by an older version may not compile
			e.log.Warn("bot trigger does not compile; the bot answers only its sessions", "instance", inst.Name, "bot", b.ID, "error", err)
			tr = &Trigger{typ: TriggerNone}
		}
		if b.ChatbotID != "" && b.Enabled {
			// A bot answering as an inactive chatbot is off with it; the
			// chatbot's writes move the configuration version on.
			if cb, err := e.chatbotFor(ctx, cfg, b.ChatbotID); err == nil && !cb.Active {
				b.Enabled = false
			} else if err != nil && wagate.ErrorCode(err) != wagate.EUNPROCESSABLE {
				return nil, err
			}
		}
		cfg.bots = append(cfg.bots, &bot{Bot: b, trigger: tr, eff: EffectiveFor(b, settings)})
	}
	return cfg, nil
}

// credsFor returns the instance's credentials id, read once per
// configuration version.
func (e *Engine) credsFor(ctx context.Context, cfg *instanceConfig, id string) (*store.Creds, error) {
	return e.cachedCreds(ctx, cfg, id, func(ctx context.Context) (*store.Creds, error) {
		return e.store.Creds(ctx, cfg.inst.ID, id)
	})
}

// cachedCreds returns the credentials cached under key, loading them once
// per configuration version. Keys other than an instance's credentials id
// carry a prefix ("org:…"), so the scopes never mix.
func (e *Engine) cachedCreds(ctx context.Context, cfg *instanceConfig, key string, load func(context.Context) (*store.Creds, error)) (*store.Creds, error) {
	cfg.mu.Lock()
	c := cfg.creds[key]
	cfg.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := load(ctx)
	if err != nil || !cfg.cacheable {
		return c, err
	}
	cfg.mu.Lock()
	cfg.creds[key] = c
	cfg.mu.Unlock()
	return c, nil
}

// chatbotFor returns the chatbot id of the instance's organization, read
// once per configuration version: chatbot writes change the version, so
// a bot answers with what its chatbot says at the time of each message.
func (e *Engine) chatbotFor(ctx context.Context, cfg *instanceConfig, id string) (*store.Chatbot, error) {
	cfg.mu.Lock()
	cb := cfg.chatbots[id]
	cfg.mu.Unlock()
	if cb != nil {
		return cb, nil
	}
	cb, err := e.store.Chatbot(ctx, cfg.inst.OrganizationID, id)
	if wagate.ErrorCode(err) == wagate.ENOTFOUND {
		return nil, wagate.Errorf(wagate.EUNPROCESSABLE, "chatbot %s: not found in the instance's organization", id)
	} else if err != nil || !cfg.cacheable {
		return cb, err
	}
	cfg.mu.Lock()
	cfg.chatbots[id] = cb
	cfg.mu.Unlock()
	return cb, nil
}
