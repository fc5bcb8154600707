package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/wagate/wagate"
)

// Console roles, from most to least powerful.
const (
	RoleOwner = "owner" // everything in the organization, and its users
	RoleAdmin = "admin" // everything but users
	RoleAgent = "agent" // the inbox only
)

// ValidRole reports whether r is a console role.
func ValidRole(r string) bool { return r == RoleOwner || r == RoleAdmin || r == RoleAgent }

// User is a console user. Email is kept lower-cased.
type User struct {
	ID           string
	Email        string
	Name         string
	PasswordHash string // argon2id, PHC string form
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Member is a user with their role in one organization.
type Member struct {
	User
	OrganizationID string
	Role           string
	JoinedAt       time.Time
}

// Membership is one organization a user belongs to, with its name.
type Membership struct {
	Organization Organization
	Role         string
}

// ConsoleSession is a signed-in browser. Only TokenHash, the SHA-256 of
// the cookie's token, is kept.
type ConsoleSession struct {
	ID             string
	TokenHash      string
	UserID         string
	OrganizationID string
	CSRFToken      string
	CreatedAt      time.Time
	LastSeenAt     time.Time
	IdleExpiresAt  time.Time
	ExpiresAt      time.Time
}

// SessionPrincipal is what a live session authenticates: the session, its
// user, the organization it acts in and the user's current role there.
type SessionPrincipal struct {
	Session ConsoleSession
	User    User
	Org     Organization
	Role    string
}

// Invite is a one-time link to join an organization.
type Invite struct {
	ID             string
	TokenHash      string
	OrganizationID string
	Role           string
	Email          string
	InvitedBy      string // the inviting user; "" when not a user
	CreatedAt      time.Time
	ExpiresAt      time.Time
	UsedAt         *time.Time
}

// NormalizeEmail is the form emails are stored and looked up in.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

const userColumns = "u.id, u.email, u.name, u.password_hash, u.created_at, u.updated_at"

func scanUser(row scanner) (*User, error) {
	var (
		u                User
		created, updated int64
	)
	if err := row.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &created, &updated); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &u, nil
}

var errEmailTaken = wagate.FieldError(wagate.ECONFLICT, "email", "a user with this email exists")

// CreateUser stores u with its role in orgID.
func (s *Store) CreateUser(ctx context.Context, u *User, orgID, role string) error {
	u.Email = NormalizeEmail(u.Email)
	return s.DoTxn(ctx, func(ctx context.Context) error {
		_, err := s.db.Exec(ctx, `INSERT INTO users (id, email, name, password_hash, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, u.ID, u.Email, u.Name, u.PasswordHash, millis(u.CreatedAt), millis(u.UpdatedAt))
		if isUniqueViolation(err) {
			return errEmailTaken
		}
		if err != nil {
			return err
		}
		return s.AddMember(ctx, u.ID, orgID, role, u.CreatedAt)
	})
}

// AddMember gives an existing user a role in orgID.
func (s *Store) AddMember(ctx context.Context, userID, orgID, role string, now time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO memberships (user_id, organization_id, role, created_at) VALUES ($1, $2, $3, $4)`,
		userID, orgID, role, millis(now))
	if isUniqueViolation(err) {
		return wagate.FieldError(wagate.ECONFLICT, "email", "this user is already a member of the organization")
	}
	return err
}

// UserByEmail returns the user with email, in any case.
func (s *Store) UserByEmail(ctx context.Context, email string) (*User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, "SELECT "+userColumns+" FROM users u WHERE u.email = $1", NormalizeEmail(email)))
	return u, notFound(err, "no user has this email")
}

// SetUserPassword replaces a user's password hash.
func (s *Store) SetUserPassword(ctx context.Context, userID, hash string, now time.Time) error {
	res, err := s.db.Exec(ctx, "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1", userID, hash, millis(now))
	return mustAffect(res, err, "user %q does not exist", userID)
}

// UserMemberships returns the organizations a user belongs to, oldest
// membership first; organizations being deleted are left out.
func (s *Store) UserMemberships(ctx context.Context, userID string) ([]*Membership, error) {
	return collect(func(row scanner) (*Membership, error) {
		var (
			m                Membership
			created, updated int64
		)
		o := &m.Organization
		if err := row.Scan(&o.ID, &o.Name, &o.IsDefault, &created, &updated, &m.Role); err != nil {
			return nil, err
		}
		o.CreatedAt, o.UpdatedAt = fromMillis(created), fromMillis(updated)
		return &m, nil
	})(s.db.Query(ctx, `SELECT o.id, o.name, o.is_default, o.created_at, o.updated_at, m.role
		FROM memberships m JOIN organizations o ON o.id = m.organization_id
		WHERE m.user_id = $1 AND NOT o.deleting ORDER BY m.created_at, o.id`, userID))
}

func scanMember(row scanner) (*Member, error) {
	var (
		m                        Member
		created, updated, joined int64
	)
	if err := row.Scan(&m.ID, &m.Email, &m.Name, &m.PasswordHash, &created, &updated, &m.OrganizationID, &m.Role, &joined); err != nil {
		return nil, err
	}
	m.CreatedAt, m.UpdatedAt, m.JoinedAt = fromMillis(created), fromMillis(updated), fromMillis(joined)
	return &m, nil
}

const memberQuery = "SELECT " + userColumns + ", m.organization_id, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id "

// ListMembers returns the organization's users, oldest member first.
func (s *Store) ListMembers(ctx context.Context, orgID string) ([]*Member, error) {
	return collect(scanMember)(s.db.Query(ctx, memberQuery+"WHERE m.organization_id = $1 ORDER BY m.created_at, u.id", orgID))
}

// GetMember returns one user of the organization.
func (s *Store) GetMember(ctx context.Context, orgID, userID string) (*Member, error) {
	m, err := scanMember(s.db.QueryRow(ctx, memberQuery+"WHERE m.organization_id = $1 AND m.user_id = $2", orgID, userID))
	return m, notFound(err, "no user %q in this organization", userID)
}

// errLastOwner keeps an organization from losing its last owner, who is
// the only one who can add users.
var errLastOwner = wagate.FieldError(wagate.ECONFLICT, "role", "the organization's last owner cannot be removed or demoted")

// SetMemberRole changes a user's role in the organization; a role that
// is none of the three is a problem of the field role.
func (s *Store) SetMemberRole(ctx context.Context, orgID, userID, role string) error {
	if !ValidRole(role) {
		return wagate.Invalid("role", `must be "owner", "admin" or "agent"`)
	}
	return s.DoTxn(ctx, func(ctx context.Context) error {
		m, err := s.GetMember(ctx, orgID, userID)
		if err != nil {
			return err
		}
		if m.Role == RoleOwner && role != RoleOwner {
			if err := s.keepAnOwner(ctx, orgID); err != nil {
				return err
			}
		}
		_, err = s.db.Exec(ctx, "UPDATE memberships SET role = $3 WHERE organization_id = $1 AND user_id = $2", orgID, userID, role)
		return err
	})
}

// RemoveMember takes a user out of the organization and ends their
// sessions in it. The user record stays for their other organizations.
func (s *Store) RemoveMember(ctx context.Context, orgID, userID string) error {
	return s.DoTxn(ctx, func(ctx context.Context) error {
		m, err := s.GetMember(ctx, orgID, userID)
		if err != nil {
			return err
		}
		if m.Role == RoleOwner {
			if err := s.keepAnOwner(ctx, orgID); err != nil {
				return err
			}
		}
		if _, err := s.db.Exec(ctx, "DELETE FROM console_sessions WHERE organization_id = $1 AND user_id = $2", orgID, userID); err != nil {
			return err
		}
		_, err = s.db.Exec(ctx, "DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2", orgID, userID)
		return err
	})
}

func (s *Store) keepAnOwner(ctx context.Context, orgID string) error {
	var n int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM memberships WHERE organization_id = $1 AND role = 'owner'", orgID).Scan(&n); err != nil {
		return err
	}
	if n <= 1 {
		return errLastOwner
	}
	return nil
}

// CreateConsoleSession stores a new session.
func (s *Store) CreateConsoleSession(ctx context.Context, cs *ConsoleSession) error {
	_, err := s.db.Exec(ctx, `INSERT INTO console_sessions (id, token_hash, user_id, organization_id, csrf_token,
			created_at, last_seen_at, idle_expires_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		cs.ID, cs.TokenHash, cs.UserID, cs.OrganizationID, cs.CSRFToken, millis(cs.CreatedAt), millis(cs.LastSeenAt),
		millis(cs.IdleExpiresAt), millis(cs.ExpiresAt))
	return err
}

// ConsoleSessionByTokenHash returns the live session whose token hashes
// to hash, with its user, organization and the user's role there. A
// session past either expiry, of a user no longer a member, or in an
// organization being deleted is not found.
func (s *Store) ConsoleSessionByTokenHash(ctx context.Context, hash string, now time.Time) (*SessionPrincipal, error) {
	var (
		p                                      SessionPrincipal
		created, seen, idle, expires           int64
		uCreated, uUpdated, oCreated, oUpdated int64
	)
	cs, u, o := &p.Session, &p.User, &p.Org
	err := s.db.QueryRow(ctx, `SELECT s.id, s.token_hash, s.user_id, s.organization_id, s.csrf_token,
			s.created_at, s.last_seen_at, s.idle_expires_at, s.expires_at,
			u.email, u.name, u.password_hash, u.created_at, u.updated_at,
			o.name, o.is_default, o.created_at, o.updated_at, m.role
		FROM console_sessions s
		JOIN users u ON u.id = s.user_id
		JOIN memberships m ON m.user_id = s.user_id AND m.organization_id = s.organization_id
		JOIN organizations o ON o.id = s.organization_id
		WHERE s.token_hash = $1 AND s.idle_expires_at > $2 AND s.expires_at > $2 AND NOT o.deleting`, hash, millis(now)).
		Scan(&cs.ID, &cs.TokenHash, &cs.UserID, &cs.OrganizationID, &cs.CSRFToken, &created, &seen, &idle, &expires,
			&u.Email, &u.Name, &u.PasswordHash, &uCreated, &uUpdated, &o.Name, &o.IsDefault, &oCreated, &oUpdated, &p.Role)
	if err != nil {
		return nil, notFound(err, "no live session has this token")
	}
	u.ID, o.ID = cs.UserID, cs.OrganizationID
	cs.CreatedAt, cs.LastSeenAt, cs.IdleExpiresAt, cs.ExpiresAt = fromMillis(created), fromMillis(seen), fromMillis(idle), fromMillis(expires)
	u.CreatedAt, u.UpdatedAt, o.CreatedAt, o.UpdatedAt = fromMillis(uCreated), fromMillis(uUpdated), fromMillis(oCreated), fromMillis(oUpdated)
	return &p, nil
}

// TouchConsoleSession records activity: the session's idle expiry moves
// to idleUntil (never past its absolute expiry, which the caller caps).
func (s *Store) TouchConsoleSession(ctx context.Context, id string, now, idleUntil time.Time) error {
	_, err := s.db.Exec(ctx, "UPDATE console_sessions SET last_seen_at = $2, idle_expires_at = $3 WHERE id = $1",
		id, millis(now), millis(idleUntil))
	return err
}

// DeleteConsoleSession ends one session.
func (s *Store) DeleteConsoleSession(ctx context.Context, id string) error {
	_, err := s.db.Exec(ctx, "DELETE FROM console_sessions WHERE id = $1", id)
	return err
}

// DeleteUserConsoleSessions ends every session of a user, in every
// organization; it returns how many there were.
func (s *Store) DeleteUserConsoleSessions(ctx context.Context, userID string) (int64, error) {
	res, err := s.db.Exec(ctx, "DELETE FROM console_sessions WHERE user_id = $1", userID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// DeleteExpiredConsoleSessions removes sessions past either expiry.
func (s *Store) DeleteExpiredConsoleSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.Exec(ctx, "DELETE FROM console_sessions WHERE expires_at <= $1 OR idle_expires_at <= $1", millis(now))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// CreateInvite stores an invite.
func (s *Store) CreateInvite(ctx context.Context, in *Invite) error {
	in.Email = NormalizeEmail(in.Email)
	var by *string
	if in.InvitedBy != "" {
		by = &in.InvitedBy
	}
	_, err := s.db.Exec(ctx, `INSERT INTO invites (id, token_hash, organization_id, role, email, invited_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, in.ID, in.TokenHash, in.OrganizationID, in.Role, in.Email, by,
		millis(in.CreatedAt), millis(in.ExpiresAt))
	return err
}

// InviteByTokenHash returns the unused, unexpired invite whose token
// hashes to hash.
func (s *Store) InviteByTokenHash(ctx context.Context, hash string, now time.Time) (*Invite, error) {
	in, err := scanInvite(s.db.QueryRow(ctx, `SELECT `+inviteColumns+`
		FROM invites i JOIN organizations o ON o.id = i.organization_id
		WHERE i.token_hash = $1 AND i.used_at IS NULL AND i.expires_at > $2 AND NOT o.deleting`, hash, millis(now)))
	if err != nil {
		return nil, notFound(err, "token: this invite does not exist, was used or has expired")
	}
	return in, nil
}

const inviteColumns = "i.id, i.token_hash, i.organization_id, i.role, i.email, i.invited_by, i.created_at, i.expires_at"

func scanInvite(row scanner) (*Invite, error) {
	var (
		in               Invite
		by               *string
		created, expires int64
	)
	if err := row.Scan(&in.ID, &in.TokenHash, &in.OrganizationID, &in.Role, &in.Email, &by, &created, &expires); err != nil {
		return nil, err
	}
	if by != nil {
		in.InvitedBy = *by
	}
	in.CreatedAt, in.ExpiresAt = fromMillis(created), fromMillis(expires)
	return &in, nil
}

// PendingInvites returns the organization's invites that may still be
// accepted (unused, unexpired), newest first.
func (s *Store) PendingInvites(ctx context.Context, orgID string, now time.Time) ([]*Invite, error) {
	return collect(scanInvite)(s.db.Query(ctx, `SELECT `+inviteColumns+` FROM invites i
		WHERE i.organization_id = $1 AND i.used_at IS NULL AND i.expires_at > $2
		ORDER BY i.created_at DESC, i.id DESC`, orgID, millis(now)))
}

// RevokeInvite deletes the organization's invite id, so that its link no
// longer works; an invite already used is not found.
func (s *Store) RevokeInvite(ctx context.Context, orgID, id string) error {
	res, err := s.db.Exec(ctx, "DELETE FROM invites WHERE organization_id = $1 AND id = $2 AND used_at IS NULL", orgID, id)
	return mustAffect(res, err, "inviteId: no invite %q waiting to be used in this organization", id)
}

// UseInvite marks the invite used, once: a second use, even concurrent,
// is not found. Call it in the transaction that acts on the invite.
func (s *Store) UseInvite(ctx context.Context, id string, now time.Time) error {
	res, err := s.db.Exec(ctx, "UPDATE invites SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND expires_at > $2", id, millis(now))
	return mustAffect(res, err, "token: this invite does not exist, was used or has expired")
}

// SigninFailures returns how many sign-ins failed under key in the window
// that began at windowStart; a window older than since counts zero.
func (s *Store) SigninFailures(ctx context.Context, key string, since time.Time) (n int, windowStart time.Time, err error) {
	var start int64
	err = s.db.QueryRow(ctx, "SELECT failures, window_start FROM signin_failures WHERE key = $1 AND window_start > $2",
		key, millis(since)).Scan(&n, &start)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	return n, fromMillis(start), nil
}

// RecordSigninFailure counts a failed sign-in under key: in the current
// window if it began after since, else in a new one beginning now.
func (s *Store) RecordSigninFailure(ctx context.Context, key string, now, since time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO signin_failures (key, failures, window_start) VALUES ($1, 1, $2)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN signin_failures.window_start > $3 THEN signin_failures.failures + 1 ELSE 1 END,
			window_start = CASE WHEN signin_failures.window_start > $3 THEN signin_failures.window_start ELSE $2 END`,
		key, millis(now), millis(since))
	return err
}

// DeleteStaleSigninFailures forgets the counts of windows that began
// before since: they no longer limit anything.
func (s *Store) DeleteStaleSigninFailures(ctx context.Context, since time.Time) error {
	_, err := s.db.Exec(ctx, "DELETE FROM signin_failures WHERE window_start <= $1", millis(since))
	return err
}

// ClearSigninFailures forgets the failures under key, after a success.
func (s *Store) ClearSigninFailures(ctx context.Context, key string) error {
	_, err := s.db.Exec(ctx, "DELETE FROM signin_failures WHERE key = $1", key)
	return err
}

// Overview is an organization's figures for the console's first page.
type Overview struct {
	MessagesToday    int64 // inbound messages since the start of the day
	RepliesToday     int64 // bot replies sent since then
	ModelErrorsToday int64 // inbound messages whose answer failed since then
	WebhookBacklog   int64 // webhook deliveries not yet done
}

// OrganizationOverview counts the organization's messages since dayStart
// and its webhook backlog. Connection states are the channels' to tell.
func (s *Store) OrganizationOverview(ctx context.Context, orgID string, dayStart time.Time) (Overview, error) {
	var o Overview
	err := s.db.QueryRow(ctx, `SELECT
			(SELECT COUNT(*) FROM messages m JOIN instances i ON i.id = m.instance_id
				WHERE i.organization_id = $1 AND m.direction = 'in' AND NOT m.from_me AND m.created_at >= $2),
			(SELECT COUNT(*) FROM messages m JOIN instances i ON i.id = m.instance_id
				WHERE i.organization_id = $1 AND m.direction = 'out' AND m.bot_id IS NOT NULL AND m.created_at >= $2),
			(SELECT COUNT(*) FROM messages m JOIN instances i ON i.id = m.instance_id
				WHERE i.organization_id = $1 AND m.direction = 'in' AND m.state = 'failed' AND m.created_at >= $2),
			(SELECT COUNT(*) FROM webhook_events e JOIN instances i ON i.id = e.instance_id
				WHERE i.organization_id = $1 AND e.status = 'pending')`, orgID, millis(dayStart)).
		Scan(&o.MessagesToday, &o.RepliesToday, &o.ModelErrorsToday, &o.WebhookBacklog)
	return o, err
}
