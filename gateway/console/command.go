package console

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
)

// UserCommand runs `wagate user <subcommand>` over st: today `create`,
// which makes a console user (typically an organization's first owner)
// with the password read from the first line of stdin, or from
// WAGATE_USER_PASSWORD when set, so it never appears in a process list.
func UserCommand(ctx context.Context, st *store.Store, args []string, getenv func(string) string, stdin io.Reader, out io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New(`usage: wagate user create -org <id or "default"> -email <email> -name <name> -role owner|admin|agent`)
	}
	fs := flag.NewFlagSet("wagate user create", flag.ContinueOnError)
	fs.SetOutput(out)
	org := fs.String("org", "default", `the organization's id, or "default"`)
	email := fs.String("email", "", "the user's email (required)")
	name := fs.String("name", "", "the user's name (required)")
	role := fs.String("role", store.RoleOwner, "owner, admin or agent")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var (
		o   *store.Organization
		err error
	)
	if *org == "default" {
		o, err = st.DefaultOrganization(ctx)
	} else {
		o, err = st.Organization(ctx, *org)
	}
	if err != nil {
		return fmt.Errorf("-org: %w", err)
	}
	password := getenv("WAGATE_USER_PASSWORD")
	if password == "" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading the password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	auth := NewAuth(st, timeNow, DefaultLimits, slog.New(slog.DiscardHandler))
	u, err := auth.CreateUser(ctx, o.ID, UserInput{Email: *email, Name: *name, Password: password, Role: *role})
	if err != nil {
		// Field names are the flags' here.
		return fmt.Errorf("%s", strings.Join(wagate.ErrorMessages(err), "; "))
	}
	fmt.Fprintf(out, "created %s %s (%s) in organization %s (%s)\n", *role, u.Email, u.ID, o.Name, o.ID)
	return nil
}
