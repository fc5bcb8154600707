package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlock is a shell block of the README that its test runs: as a
// step of the walkthroughs, or in the background (a receiver meant for a
// second terminal), in the order they appear.
type readmeBlock struct {
	line       int
	background string // the name of a background block, "" for a step
	script     string
}

// readmeBlocks returns the README's sh blocks marked with a
// "<!-- readme-test: run -->" or "<!-- readme-test: background NAME -->"
// comment on the line before them.
func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	f, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var (
		blocks []readmeBlock
		marker string
		cur    *readmeBlock
	)
	sc := bufio.NewScanner(bytes.NewReader(f))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.script += line + "\n"
		case strings.HasPrefix(line, "<!-- readme-test:"):
			marker = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "<!-- readme-test:"), "-->"))
		case line == "```sh" && marker != "":
			cur = &readmeBlock{line: n}
			if name, ok := strings.CutPrefix(marker, "background "); ok {
				cur.background = name
			} else if marker != "run" {
				t.Fatalf("README line %d: unknown marker %q", n-1, marker)
			}
			marker = ""
		case strings.TrimSpace(line) != "":
			marker = ""
		}
	}
	return blocks
}

// TestReadmeWalkthroughs runs the README's walkthrough blocks as a user
// pasting them would, against the built gateway and fake model server:
// once from a fresh start with only the bot walkthrough (after the
// receiver), once all of them in order, so each block works on its own
// and after the ones before it. "go run ./cmd/…" runs the built binaries.
func TestReadmeWalkthroughs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	for _, port := range []string{"8080", "8090", "9000"} {
		if ln, err := net.Listen("tcp", "127.0.0.1:"+port); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("port %s, which the README uses, is taken: %v", port, err)
			}
			t.Skipf("port %s, which the README uses, is taken (a gateway running here?): %v", port, err)
		} else {
			ln.Close()
		}
	}
	for _, tool := range []string{"bash", "curl", "jq", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README needs %s: %v", tool, err)
		}
	}
	bin := t.TempDir()
	for _, cmd := range []string{"wagate", "fakeai"} {
		build := exec.Command("go", "build", "-o", filepath.Join(bin, cmd), "../"+cmd)
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", cmd, err, out)
		}
	}
	// The README says "go run ./cmd/wagate": this go runs the binaries.
	goShim := `#!/bin/sh
if [ "$1" = run ]; then
	case "$2" in
	./cmd/wagate) shift 2; exec "` + bin + `/wagate" "$@" ;;
	./cmd/fakeai) shift 2; exec "` + bin + `/fakeai" "$@" ;;
	esac
fi
echo "go $*: not available to the README test" >&2
exit 1
`
	shimDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(shimDir, "go"), []byte(goShim), 0o755); err != nil {
		t.Fatal(err)
	}

	blocks := readmeBlocks(t)
	var steps, bot []readmeBlock
	var receiver *readmeBlock
	for i, b := range blocks {
		switch {
		case b.background == "receiver":
			receiver = &blocks[i]
		case b.background != "":
			t.Fatalf("README line %d: unknown background block %q", b.line, b.background)
		default:
			steps = append(steps, b)
			if strings.Contains(b.script, "cmd/fakeai") {
				bot = append(bot, b)
			}
		}
	}
	if receiver == nil || len(steps) < 6 || len(bot) != 1 {
		t.Fatalf("README: %d steps, %d bot blocks, receiver %v: the markers are missing", len(steps), len(bot), receiver != nil)
	}

	t.Run("bot walkthrough on a fresh start", func(t *testing.T) {
		out := runReadme(t, shimDir, *receiver, bot)
		waitFor(t, out.receiver, "echo: Onde está meu pedido?")
		waitFor(t, out.receiver, "openai.session.opened")
	})
	t.Run("every walkthrough in order", func(t *testing.T) {
		out := runReadme(t, shimDir, *receiver, steps)
		for _, want := range []string{"messages.upsert", "Hello Ana!", "echo: Onde está meu pedido?"} {
			waitFor(t, out.receiver, want)
		}
		for _, want := range []string{`"status":"success"`, `"status":"delivered"`, `"ok":true`, `"apiKey":"ob_live_`} {
			if !strings.Contains(out.steps, want) {
				t.Errorf("the steps' output lacks %s:\n%s", want, out.steps)
			}
		}
	})
}

type readmeOutput struct {
	steps    string
	receiver func() string
}

// runReadme runs receiver in the background and the steps in one shell,
// as one terminal session, in a fresh directory; it fails the test if a
// step fails. Everything it started is stopped when the test ends.
func runReadme(t *testing.T, shimDir string, receiver readmeBlock, steps []readmeBlock) readmeOutput {
	t.Helper()
	dir := t.TempDir()
	env := append(os.Environ(), "PATH="+shimDir+":"+os.Getenv("PATH"))

	recvLog := filepath.Join(dir, "receiver.log")
	rl, err := os.Create(recvLog)
	if err != nil {
		t.Fatal(err)
	}
	recv := exec.Command("bash", "-c", receiver.script)
	recv.Dir, recv.Env, recv.Stdout, recv.Stderr = dir, env, rl, rl
	recv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-recv.Process.Pid, syscall.SIGKILL); recv.Wait(); rl.Close() })

	var script strings.Builder
	script.WriteString("set -eo pipefail\n")
	for _, b := range steps {
		fmt.Fprintf(&script, "echo '--- README line %d' >&2\n%s\n", b.line, b.script)
	}
	sh := exec.Command("bash", "-c", script.String())
	// A pipe of our own rather than exec's: the gateway the steps leave
	// running holds it open, and Wait would wait for exec's pipe to close.
	// (Not a file either: "tee /dev/stderr" would truncate it.)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	go io.Copy(&out, r)
	t.Cleanup(func() { r.Close() })
	output := out.String
	sh.Dir, sh.Env, sh.Stdout, sh.Stderr = dir, env, w, w
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The gateway and the fake model server the steps start in the
	// background are in the shell's process group.
	t.Cleanup(func() {
		if sh.Process != nil {
			syscall.Kill(-sh.Process.Pid, syscall.SIGTERM)
			time.Sleep(200 * time.Millisecond)
			syscall.Kill(-sh.Process.Pid, syscall.SIGKILL)
		}
	})
	done := make(chan error, 1)
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() { done <- sh.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the README steps failed: %v\n%s", err, output())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("the README steps did not finish:\n%s", output())
	}
	return readmeOutput{steps: output(), receiver: func() string { b, _ := os.ReadFile(recvLog); return string(b) }}
}

// waitFor waits until the receiver's output has want, failing the test
// after a generous bound (the events arrive within milliseconds).
func waitFor(t *testing.T, output func() string, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(output(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver did not print %q:\n%s", want, output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
