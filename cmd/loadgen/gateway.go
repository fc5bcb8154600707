package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// gatewayClient calls the gateway's public API: of one gateway, or of
// several replicas sharing a database, which take the inbound posts in turn.
type gatewayClient struct {
	base, apiKey, metricsToken string
	replicas                   []string // every base URL; base is the first
	next                       atomic.Uint64
	http                       *http.Client
}

func newGatewayClient(base, apiKey, metricsToken string, senders int) *gatewayClient {
	if metricsToken == "" {
		metricsToken = apiKey
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = senders + 4 // one kept-alive connection per sender, plus setup and scrapes
	var replicas []string
	for _, b := range strings.Split(base, ",") {
		replicas = append(replicas, strings.TrimRight(b, "/"))
	}
	return &gatewayClient{base: replicas[0], replicas: replicas, apiKey: apiKey, metricsToken: metricsToken,
		http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// call sends body as JSON with key and decodes a JSON answer into out. A
// status other than want is an error quoting the body.
func (g *gatewayClient) call(ctx context.Context, method, path, key string, body, out any, want int) error {
	return g.callAt(ctx, g.base, method, path, key, body, out, want)
}

// callAt is call to the gateway at base.
func (g *gatewayClient) callAt(ctx context.Context, base, method, path, key string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("apikey", key)
	resp, err := g.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// loadInstance is the instance a run creates.
type loadInstance struct {
	name, number, token string
}

// setup creates the instance (webhook to hookURL, send.message only: the
// one event per message that the reference pipeline also sends), the
// credentials pointing at aiURL, and a bot answering every message at once.
func (g *gatewayClient) setup(ctx context.Context, hookURL, aiURL string) (*loadInstance, error) {
	suffix := make([]byte, 4)
	rand.Read(suffix)
	inst := &loadInstance{name: "loadgen-" + hex.EncodeToString(suffix)}
	inst.number = "num-" + inst.name
	var created struct {
		Hash string `json:"hash"`
	}
	err := g.call(ctx, "POST", "/instance/create", g.apiKey, map[string]any{
		"instanceName": inst.name, "integration": "EVOLUTION", "number": inst.number,
		"webhook": map[string]any{"url": hookURL, "events": []string{"SEND_MESSAGE"}},
	}, &created, http.StatusCreated)
	if err != nil {
		return nil, err
	}
	inst.token = created.Hash
	var creds struct {
		ID string `json:"id"`
	}
	err = g.call(ctx, "POST", "/openai/creds/"+inst.name, inst.token, map[string]any{
		"name": "fakeai", "apiKey": "sk-loadgen-0000", "baseUrl": aiURL,
	}, &creds, http.StatusCreated)
	if err != nil {
		return inst, err
	}
	err = g.call(ctx, "POST", "/openai/create/"+inst.name, inst.token, map[string]any{
		"enabled": true, "openaiCredsId": creds.ID, "botType": "chatCompletion", "model": "gpt-4o",
		"triggerType": "all", "debounceTime": 0, "delayMessage": 0, "timePerChar": 0, "splitMessages": false,
	}, nil, http.StatusCreated)
	return inst, err
}

func (g *gatewayClient) deleteInstance(ctx context.Context, inst *loadInstance) error {
	return g.call(ctx, "DELETE", "/instance/delete/"+inst.name, g.apiKey, nil, nil, http.StatusOK)
}

// inbound posts message i as a customer's text on the EVOLUTION channel,
// to the next replica in turn.
func (g *gatewayClient) inbound(ctx context.Context, inst *loadInstance, i, conversations int) error {
	base := g.replicas[int(g.next.Add(1)%uint64(len(g.replicas)))]
	return g.callAt(ctx, base, "POST", "/webhook/evolution", inst.token, map[string]any{
		"numberId": inst.number,
		"key":      map[string]any{"id": "LG" + strconv.Itoa(i), "remoteJid": chatOf(i, conversations), "fromMe": false},
		"pushName": "Load",
		"message":  map[string]any{"conversation": messageText(i)},
	}, nil, http.StatusOK)
}

// gauges are the gateway's figures the harness reports.
type gauges struct {
	rss, goroutines, backlog, pending, conversations float64
}

// scrape reads /metrics.
func (g *gatewayClient) scrape(ctx context.Context) (gauges, error) {
	var gs gauges
	req, err := http.NewRequestWithContext(ctx, "GET", g.base+"/metrics", nil)
	if err != nil {
		return gs, err
	}
	req.Header.Set("Authorization", "Bearer "+g.metricsToken)
	resp, err := g.http.Do(req)
	if err != nil {
		return gs, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return gs, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	want := map[string]*float64{
		"process_resident_memory_bytes":   &gs.rss,
		"go_goroutines":                   &gs.goroutines,
		"wagate_webhook_backlog":          &gs.backlog,
		"wagate_pending_inbound_messages": &gs.pending,
		"wagate_live_conversations":       &gs.conversations,
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if dst := want[name]; ok && dst != nil {
			*dst, _ = strconv.ParseFloat(value, 64)
		}
	}
	return gs, sc.Err()
}

// monitor samples /metrics until stopped and keeps the peaks.
type monitor struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	rssPeak float64
	gorPeak float64
	err     error
}

func (g *gatewayClient) monitor(ctx context.Context) *monitor {
	m := &monitor{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			gs, err := g.scrape(ctx)
			m.mu.Lock()
			if err != nil && m.err == nil {
				m.err = err
			}
			m.rssPeak, m.gorPeak = max(m.rssPeak, gs.rss), max(m.gorPeak, gs.goroutines)
			m.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *monitor) finish() (rssPeak, gorPeak float64, err error) {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rssPeak, m.gorPeak, m.err
}

// runGateway runs the workload against the gateway.
func runGateway(ctx context.Context, g *gatewayClient, aiURL string, w workload, o options, log *slog.Logger) (*result, error) {
	rc, err := startReceiver()
	if err != nil {
		return nil, err
	}
	defer rc.close()
	var insts []*loadInstance
	if !o.keep {
		defer func() {
			// Deleting a big instance takes a while; it is not measured.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			for _, inst := range insts {
				if err := g.deleteInstance(dctx, inst); err != nil {
					log.Warn("could not delete the load instance", "instance", inst.name, "error", err)
				}
			}
		}()
	}
	for range o.instances {
		inst, err := g.setup(ctx, rc.url, aiURL)
		if inst != nil {
			insts = append(insts, inst)
		}
		if err != nil {
			return nil, fmt.Errorf("setting up the gateway: %w", err)
		}
	}
	if len(g.replicas) > 1 {
		// Every instance has an owner before the clock starts.
		if err := g.waitOwned(ctx, insts); err != nil {
			return nil, err
		}
	}
	base, err := g.scrape(ctx)
	if err != nil {
		return nil, err
	}
	tr := newTracker(w.messages)
	rc.tr.Store(tr)
	mon := g.monitor(ctx)
	var meter *cpuMeter
	if o.launched != nil {
		if meter, err = startCPUMeter(ctx, o.launched); err != nil {
			return nil, fmt.Errorf("measuring processor time: %w", err)
		}
	}
	sendTime := drive(ctx, w, tr, func(ctx context.Context, i int) error {
		// A conversation stays on one instance, so its order holds.
		return g.inbound(ctx, insts[(i%w.conversations)%len(insts)], i, w.conversations)
	})
	rssPeak, gorPeak, monErr := mon.finish()
	res := tr.result(sendTime)
	if meter != nil {
		cpu := meter.finish(ctx)
		res.cpu = &cpu
	}
	res.haveMetrics, res.metricsErr = true, monErr
	res.rssBase, res.goroutinesBase = base.rss, base.goroutines
	res.rssPeak, res.goroutinesPeak = rssPeak, gorPeak

	// Goroutines return to the baseline once workers and connections are
	// idle; a small margin covers keep-alive connections to the receiver
	// and the model server. The senders' own kept-alive connections each
	// hold a goroutine in the gateway: they are closed first.
	g.http.CloseIdleConnections()
	deadline := time.Now().Add(o.settle)
	for {
		end, err := g.scrape(ctx)
		if err != nil {
			return res, err
		}
		res.rssEnd, res.goroutinesEnd = end.rss, end.goroutines
		res.backlogEnd, res.pendingEnd, res.convEnd = end.backlog, end.pending, end.conversations
		res.goroutinesSettled = end.goroutines <= base.goroutines+8
		if res.goroutinesSettled || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return res, nil
}

// createIdle creates n EVOLUTION instances without webhooks or bots, as
// numbers waiting for traffic, and reports the gateway's memory.
func createIdle(ctx context.Context, g *gatewayClient, n int, out io.Writer) error {
	begin := time.Now()
	for i := range n {
		name := fmt.Sprintf("idle-%06d", i)
		err := g.call(ctx, "POST", "/instance/create", g.apiKey, map[string]any{
			"instanceName": name, "integration": "EVOLUTION", "number": "num-" + name,
		}, nil, http.StatusCreated)
		if err != nil {
			return err
		}
	}
	gs, err := g.scrape(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "created %d idle instances in %s; RSS %s, goroutines %.0f\n", n, time.Since(begin).Round(time.Millisecond), mb(gs.rss), gs.goroutines)
	return nil
}

// waitReady polls /readyz until it answers 200 and reports the time since
// start (started together with the gateway), then the gateway's memory once
// it has settled.
func waitReady(ctx context.Context, g *gatewayClient, start time.Time, out io.Writer) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", g.base+"/readyz", nil)
		resp, err := g.http.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-ctx.Done():
			return errors.New("the gateway did not become ready within -duration")
		case <-time.After(5 * time.Millisecond):
		}
	}
	fmt.Fprintf(out, "ready after %s\n", time.Since(start).Round(time.Millisecond))
	gs, err := g.scrape(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "at ready: RSS %s, goroutines %.0f\n", mb(gs.rss), gs.goroutines)
	time.Sleep(3 * time.Second)
	if gs, err = g.scrape(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "3 s later: RSS %s, goroutines %.0f\n", mb(gs.rss), gs.goroutines)
	return nil
}

// waitOwned waits until a replica owns each of insts.
func (g *gatewayClient) waitOwned(ctx context.Context, insts []*loadInstance) error {
	for {
		var list []struct{ Name, Owner string }
		if err := g.call(ctx, "GET", "/instance/fetchInstances", g.apiKey, nil, &list, http.StatusOK); err != nil {
			return err
		}
		owners := map[string]string{}
		for _, in := range list {
			owners[in.Name] = in.Owner
		}
		owned := 0
		for _, inst := range insts {
			if owners[inst.name] != "" {
				owned++
			}
		}
		if owned == len(insts) {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("the instances never all had an owner")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
