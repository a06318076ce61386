// Package accounts holds the controller's user accounts: who may log in,
// with which roles, until when. Passwords are hashed with argon2id; every
// account is persisted in the ledger as a meta record (key
// "account/<id>"), and every login, failed login, logout and account change
// is journaled with the user who did it. No password and no hash is ever
// written to a log.
//
// Lock-out and the per-address login rate limit live in memory: a restart
// forgets them (the journal keeps the failed logins).
//
// Who may import it: hmi and cmd/linectl.
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// Role is what a user may do. A user holds one or more.
type Role string

const (
	RoleOperator  Role = "operator"
	RoleQA        Role = "qa"
	RoleEngineer  Role = "engineer"
	RoleAdmin     Role = "admin"
	RoleInspector Role = "inspector" // read-only, granted for a limited time
)

// Roles lists every role in a stable order.
var Roles = []Role{RoleOperator, RoleQA, RoleEngineer, RoleAdmin, RoleInspector}

// ParseRole checks a role's name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q (want one of operator, qa, engineer, admin, inspector)", s)
}

// Sentinel errors callers branch on.
var (
	ErrBadLogin    = errors.New("wrong user or password")
	ErrLocked      = errors.New("account locked after too many failed logins")
	ErrRateLimited = errors.New("too many login attempts from this address")
	ErrExpired     = errors.New("account's access has expired")
	ErrDisabled    = errors.New("account disabled")
	ErrNotFound    = errors.New("no such account")
	ErrExists      = errors.New("account exists")
	ErrInvalid     = errors.New("invalid account request")
	ErrForbidden   = errors.New("not allowed")
	ErrSetupDone   = errors.New("setup already done")
	ErrBadToken    = errors.New("wrong or used setup token")
)

// Entry is one journal record the accounts write (see Journal).
type Entry struct {
	Type  string // "login", "login.failed", "logout", "account", "password", "setup"
	Batch string // the batch whose audit trail it belongs to (optional; must exist)
	Key   string // "account/<id>" when the account's stored value changes
	Value string // JSON
}

// Journal is the part of the ledger accounts need. The ledger's
// aggregation.Store satisfies it through Ledger.
type Journal interface {
	// Record journals e durably, done by user; when e.Key is set, e.Value
	// becomes the key's current value.
	Record(ctx context.Context, e Entry, user string) error
	// MetaPrefix calls fn for every key starting with prefix.
	MetaPrefix(ctx context.Context, prefix string, fn func(key, value string) error) error
}

// Params are argon2id's cost parameters. Each hash carries its own, so
// they may be raised later without invalidating stored passwords.
type Params struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultParams are OWASP's first recommended argon2id setting: m=46 MiB,
// t=1, p=1. One thread, so that a login never takes both of the
// controller's cores from the line (RFC 9106's t=3, m=64 MiB, p=4 took
// 0.8 s of both cores on the loaded test machine, and made the demo's
// challenge test late).
var DefaultParams = Params{Time: 1, Memory: 46 * 1024, Threads: 1}

// demoParams hash the demo accounts' public password "demo": cheap, since
// it protects nothing.
var demoParams = Params{Time: 1, Memory: 8 * 1024, Threads: 1}

// Config sets the accounts' policy. Zero values take the defaults.
type Config struct {
	Params Params
	// MaxFailures consecutive failed logins lock the account for LockFor
	// (default 5, 15 min).
	MaxFailures int
	LockFor     time.Duration
	// PerAddress login attempts are allowed per address and minute
	// (default 20).
	PerAddress int
	// MinPassword is the shortest password accepted (default 8).
	MinPassword int
	// Demo creates operator, qa, engineer and admin with password "demo".
	Demo bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Validate checks the config.
func (c Config) Validate() error {
	switch {
	case c.MaxFailures < 0:
		return fmt.Errorf("accounts.max_failures: %d is negative", c.MaxFailures)
	case c.LockFor < 0:
		return fmt.Errorf("accounts.lock_for: %s is negative", c.LockFor)
	case c.PerAddress < 0:
		return fmt.Errorf("accounts.per_address: %d is negative", c.PerAddress)
	case c.MinPassword < 0:
		return fmt.Errorf("accounts.min_password: %d is negative", c.MinPassword)
	case c.Params != Params{} && (c.Params.Time == 0 || c.Params.Memory < 8*uint32(c.Params.Threads) || c.Params.Threads == 0):
		return fmt.Errorf("accounts.params: time %d, memory %d KiB, threads %d: want time ≥ 1, threads ≥ 1, memory ≥ 8×threads",
			c.Params.Time, c.Params.Memory, c.Params.Threads)
	}
	return nil
}

// User is an account as callers see it (no hash).
type User struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Roles   []Role    `json:"roles"`
	Expires time.Time `json:"expires,omitzero"` // zero: never
	Created time.Time `json:"created"`
	By      string    `json:"by"` // who created or last changed it
}

// Has reports whether u holds role r.
func (u User) Has(r Role) bool { return slices.Contains(u.Roles, r) }

// HasAny reports whether u holds one of rs.
func (u User) HasAny(rs ...Role) bool {
	for _, r := range rs {
		if u.Has(r) {
			return true
		}
	}
	return false
}

// stored is the ledger's value of "account/<id>".
type stored struct {
	User
	Hash     string `json:"hash"`
	Disabled bool   `json:"disabled,omitempty"`
}

// Accounts is the account service. It is safe for concurrent use.
type Accounts struct {
	cfg Config
	j   Journal
	log *slog.Logger

	mu         sync.Mutex
	users      map[string]*stored
	failures   map[string]int       // consecutive, by user id
	lockedTill map[string]time.Time // by user id
	attempts   map[string][]time.Time
	setupToken string
	// dummy is verified against for unknown users, so that a wrong user
	// name costs as long as a wrong password.
	dummyOnce sync.Once
	dummy     string
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// Open loads the accounts from the journal. In demo mode it creates the
// demo accounts that are missing. Without any admin (and not in demo mode)
// it makes a one-time setup token: SetupToken returns it.
func Open(ctx context.Context, cfg Config, j Journal, log *slog.Logger) (*Accounts, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if j == nil {
		return nil, errors.New("accounts: no journal")
	}
	if cfg.Params == (Params{}) {
		cfg.Params = DefaultParams
	}
	if cfg.MaxFailures == 0 {
		cfg.MaxFailures = 5
	}
	if cfg.LockFor == 0 {
		cfg.LockFor = 15 * time.Minute
	}
	if cfg.PerAddress == 0 {
		cfg.PerAddress = 20
	}
	if cfg.MinPassword == 0 {
		cfg.MinPassword = 8
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Accounts{cfg: cfg, j: j, log: log, users: map[string]*stored{}, failures: map[string]int{},
		lockedTill: map[string]time.Time{}, attempts: map[string][]time.Time{}}
	err := j.MetaPrefix(ctx, "account/", func(key, value string) error {
		var s stored
		if err := json.Unmarshal([]byte(value), &s); err != nil {
			return fmt.Errorf("ledger key %s: %w", key, err)
		}
		a.users[s.ID] = &s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: loading: %w", err)
	}
	if cfg.Demo {
		for _, r := range []Role{RoleOperator, RoleQA, RoleEngineer, RoleAdmin} {
			id := string(r)
			if _, ok := a.users[id]; ok {
				continue
			}
			u := User{ID: id, Name: "Demo " + id, Roles: []Role{r}}
			s := &stored{User: u, Hash: Hash("demo", demoParams)}
			s.Created, s.By = cfg.Now().UTC(), System
			if err := a.save(ctx, s, System, "account"); err != nil {
				return nil, err
			}
		}
	} else if !a.hasAdmin() {
		a.setupToken = randomHex(16)
	}
	return a, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}

func (a *Accounts) hasAdmin() bool {
	for _, u := range a.users {
		if u.Has(RoleAdmin) && !u.Disabled {
			return true
		}
	}
	return false
}

// NeedsSetup reports whether there is no admin yet (production's first run).
func (a *Accounts) NeedsSetup() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.setupToken != ""
}

// SetupToken is the one-time token for the setup URL ("" once set up).
// The caller prints it on the console or in the log, once.
func (a *Accounts) SetupToken() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.setupToken
}

// Setup creates the first admin with the one-time token. A token of ""
// means the console (the caller vouches the operator sits at the machine).
func (a *Accounts) Setup(ctx context.Context, token, id, name, password string, console bool) (User, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.setupToken == "" {
		return User{}, ErrSetupDone
	}
	if !console && subtle.ConstantTimeCompare([]byte(token), []byte(a.setupToken)) != 1 {
		return User{}, ErrBadToken
	}
	u := User{ID: id, Name: name, Roles: []Role{RoleAdmin}}
	if err := a.checkNew(u, password); err != nil {
		return User{}, err
	}
	by := id
	if err := a.put(ctx, u, password, by, "setup"); err != nil {
		return User{}, err
	}
	a.setupToken = ""
	return a.users[id].User, nil
}

func (a *Accounts) checkNew(u User, password string) error {
	if !idRE.MatchString(u.ID) {
		return fmt.Errorf("%w: id %q: want 1–32 of a-z 0-9 . _ -, starting with a letter or digit", ErrInvalid, u.ID)
	}
	if _, ok := a.users[u.ID]; ok || u.ID == System {
		return fmt.Errorf("%w: %s", ErrExists, u.ID)
	}
	if n := strings.TrimSpace(u.Name); n == "" || len(n) > 100 {
		return fmt.Errorf("%w: name: want 1–100 characters", ErrInvalid)
	}
	return a.checkPassword(password)
}

func (a *Accounts) checkPassword(p string) error {
	if n := len([]rune(p)); n < a.cfg.MinPassword || len(p) > 256 {
		return fmt.Errorf("%w: password: want %d–256 characters", ErrInvalid, a.cfg.MinPassword)
	}
	return nil
}

func checkRoles(rs []Role) error {
	if len(rs) == 0 {
		return fmt.Errorf("%w: roles: at least one", ErrInvalid)
	}
	for _, r := range rs {
		if _, err := ParseRole(string(r)); err != nil {
			return fmt.Errorf("%w: roles: %v", ErrInvalid, err)
		}
	}
	return nil
}

// put stores u (hashing password when not ""), journaled as typ by by.
// a.mu is held or a is not yet shared.
func (a *Accounts) put(ctx context.Context, u User, password, by, typ string) error {
	s := stored{User: u}
	if old, ok := a.users[u.ID]; ok {
		s.Hash, s.Disabled = old.Hash, old.Disabled
		if s.Created.IsZero() {
			s.Created = old.Created
		}
	}
	if s.Created.IsZero() {
		s.Created = a.cfg.Now().UTC()
	}
	s.By = by
	if password != "" {
		s.Hash = Hash(password, a.cfg.Params)
	}
	return a.save(ctx, &s, by, typ)
}

func (a *Accounts) save(ctx context.Context, s *stored, by, typ string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := a.j.Record(ctx, Entry{Type: typ, Key: "account/" + s.ID, Value: string(b)}, by); err != nil {
		return fmt.Errorf("accounts: journaling %s of %s: %w", typ, s.ID, err)
	}
	a.users[s.ID] = s
	return nil
}

func (a *Accounts) note(ctx context.Context, typ, user string, detail map[string]string) {
	b, _ := json.Marshal(detail)
	if err := a.j.Record(ctx, Entry{Type: typ, Value: string(b)}, user); err != nil {
		a.log.Error("accounts: journaling", "type", typ, "user", user, "err", err)
	}
}

// Hash returns password's argon2id hash in the PHC string form
// $argon2id$v=19$m=…,t=…,p=…$salt$hash (16-byte salt, 32-byte key).
func Hash(password string, p Params) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key))
}

// CheckHash reports whether password matches a hash made by Hash.
func CheckHash(password, hash string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Time == 0 || p.Threads == 0 || p.Memory > 1<<22 || p.Time > 64 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// Login checks a user's password from address addr (for the rate limit),
// journals the login or the failed login, and returns the user.
func (a *Accounts) Login(ctx context.Context, id, password, addr string) (User, error) {
	u, err := a.check(ctx, id, password, addr, "login")
	if err != nil {
		return User{}, err
	}
	a.note(ctx, "login", u.ID, map[string]string{"address": addr})
	return u, nil
}

// Authenticate checks a user's password again, for an electronic
// signature; it counts towards the lock-out like a login and journals a
// failure, but journals no login (the signature itself is journaled by
// its caller).
func (a *Accounts) Authenticate(ctx context.Context, id, password string) (User, error) {
	return a.check(ctx, id, password, "", "authenticate")
}

func (a *Accounts) check(ctx context.Context, id, password, addr, what string) (User, error) {
	now := a.cfg.Now()
	a.mu.Lock()
	if addr != "" {
		if len(a.attempts) > 4096 { // forget addresses quiet for a minute
			for k, ts := range a.attempts {
				if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= time.Minute {
					delete(a.attempts, k)
				}
			}
		}
		recent := a.attempts[addr][:0]
		for _, t := range a.attempts[addr] {
			if now.Sub(t) < time.Minute {
				recent = append(recent, t)
			}
		}
		if len(recent) >= a.cfg.PerAddress {
			a.attempts[addr] = recent
			a.mu.Unlock()
			a.note(ctx, "login.failed", safeID(id), map[string]string{"address": addr, "why": "rate limited", "what": what})
			return User{}, ErrRateLimited
		}
		a.attempts[addr] = append(recent, now)
	}
	s, ok := a.users[id]
	var hash string
	if ok {
		hash = s.Hash
	}
	locked := ok && now.Before(a.lockedTill[id])
	a.mu.Unlock()
	if locked {
		a.note(ctx, "login.failed", id, map[string]string{"address": addr, "why": "locked", "what": what})
		return User{}, ErrLocked
	}
	if !ok {
		a.dummyOnce.Do(func() { a.dummy = Hash("not a password", a.cfg.Params) })
		hash = a.dummy
	}
	good := CheckHash(password, hash) && ok // argon2 outside the lock
	a.mu.Lock()
	var fail error
	switch {
	case !good:
		fail = ErrBadLogin
		if ok {
			a.failures[id]++
			if a.failures[id] >= a.cfg.MaxFailures {
				a.lockedTill[id] = now.Add(a.cfg.LockFor)
				a.failures[id] = 0
				fail = ErrLocked
			}
		}
	case s.Disabled:
		fail = ErrDisabled
	case !s.Expires.IsZero() && !now.Before(s.Expires):
		fail = ErrExpired
	default:
		a.failures[id] = 0
	}
	var u User
	if ok {
		u = s.User
	}
	a.mu.Unlock()
	if fail != nil {
		why := map[error]string{ErrBadLogin: "wrong password", ErrLocked: "locked out now", ErrDisabled: "disabled", ErrExpired: "expired"}[fail]
		if !ok {
			why = "unknown user"
		}
		a.note(ctx, "login.failed", safeID(id), map[string]string{"address": addr, "why": why, "what": what})
		return User{}, fail
	}
	return u, nil
}

// safeID is id as journaled for a failed login: an unknown user's name is
// kept only if it looks like an id (a mistyped password in the user field
// is not journaled).
func safeID(id string) string {
	if idRE.MatchString(id) {
		return id
	}
	return "?"
}

// Logout journals a logout.
func (a *Accounts) Logout(ctx context.Context, id, why string) {
	a.note(ctx, "logout", id, map[string]string{"why": why})
}

// Note journals something a user did that changes no account (an
// inspector's page view, for instance).
func (a *Accounts) Note(ctx context.Context, typ, user string, detail map[string]string) {
	a.note(ctx, typ, user, detail)
}

// Get returns a user who may act now: known, not disabled, not expired.
func (a *Accounts) Get(id string) (User, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.users[id]
	switch {
	case !ok:
		return User{}, ErrNotFound
	case s.Disabled:
		return User{}, ErrDisabled
	case !s.Expires.IsZero() && !a.cfg.Now().Before(s.Expires):
		return User{}, ErrExpired
	}
	return s.User, nil
}

// List returns every account, by id.
func (a *Accounts) List() []User {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]User, 0, len(a.users))
	for _, s := range a.users {
		out = append(out, s.User)
	}
	slices.SortFunc(out, func(x, y User) int { return strings.Compare(x.ID, y.ID) })
	return out
}

// Create makes an account; only an admin may. An inspector account must
// expire (Grant).
func (a *Accounts) Create(ctx context.Context, admin User, u User, password string) (User, error) {
	if !admin.Has(RoleAdmin) {
		return User{}, ErrForbidden
	}
	if err := checkRoles(u.Roles); err != nil {
		return User{}, err
	}
	if slices.Contains(u.Roles, RoleInspector) {
		if len(u.Roles) != 1 {
			return User{}, fmt.Errorf("%w: roles: inspector is granted alone (read-only)", ErrInvalid)
		}
		if u.Expires.IsZero() || !u.Expires.After(a.cfg.Now()) || u.Expires.Sub(a.cfg.Now()) > 90*24*time.Hour {
			return User{}, fmt.Errorf("%w: expires: an inspector's access must end within 90 days", ErrInvalid)
		}
	} else if !u.Expires.IsZero() && !u.Expires.After(a.cfg.Now()) {
		return User{}, fmt.Errorf("%w: expires: in the past", ErrInvalid)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.checkNew(u, password); err != nil {
		return User{}, err
	}
	u.Created, u.Expires = time.Time{}, u.Expires.UTC()
	if err := a.put(ctx, u, password, admin.ID, "account"); err != nil {
		return User{}, err
	}
	return a.users[u.ID].User, nil
}

// SetRoles changes an account's roles; only an admin may, and not to
// leave the controller without an admin.
func (a *Accounts) SetRoles(ctx context.Context, admin User, id string, roles []Role) (User, error) {
	if !admin.Has(RoleAdmin) {
		return User{}, ErrForbidden
	}
	if err := checkRoles(roles); err != nil {
		return User{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.users[id]
	if !ok {
		return User{}, ErrNotFound
	}
	if slices.Contains(roles, RoleInspector) != s.Has(RoleInspector) {
		return User{}, fmt.Errorf("%w: roles: inspector access is granted as its own account, with an end", ErrInvalid)
	}
	c := *s
	c.Roles = slices.Clone(roles)
	c.By = admin.ID
	if s.Has(RoleAdmin) && !c.Has(RoleAdmin) {
		others := 0
		for _, o := range a.users {
			if o.ID != id && o.Has(RoleAdmin) && !o.Disabled {
				others++
			}
		}
		if others == 0 {
			return User{}, fmt.Errorf("%w: roles: %s is the last admin", ErrInvalid, id)
		}
	}
	if err := a.save(ctx, &c, admin.ID, "account.roles"); err != nil {
		return User{}, err
	}
	return c.User, nil
}

// ChangePassword sets a user's own password, given the old one.
func (a *Accounts) ChangePassword(ctx context.Context, id, old, new string) error {
	if _, err := a.Authenticate(ctx, id, old); err != nil {
		return err
	}
	if err := a.checkPassword(new); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c := *a.users[id]
	c.Hash, c.By = Hash(new, a.cfg.Params), id
	return a.save(ctx, &c, id, "account.password")
}

// ResetPassword sets another user's password; only an admin may.
func (a *Accounts) ResetPassword(ctx context.Context, admin User, id, new string) error {
	if !admin.Has(RoleAdmin) {
		return ErrForbidden
	}
	if err := a.checkPassword(new); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.users[id]
	if !ok {
		return ErrNotFound
	}
	c := *s
	c.Hash, c.By = Hash(new, a.cfg.Params), admin.ID
	delete(a.lockedTill, id)
	return a.save(ctx, &c, admin.ID, "account.password")
}

// SetDisabled disables or enables an account; only an admin may.
func (a *Accounts) SetDisabled(ctx context.Context, admin User, id string, disabled bool) error {
	if !admin.Has(RoleAdmin) {
		return ErrForbidden
	}
	if admin.ID == id {
		return fmt.Errorf("%w: an admin does not disable their own account", ErrInvalid)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.users[id]
	if !ok {
		return ErrNotFound
	}
	c := *s
	c.Disabled, c.By = disabled, admin.ID
	return a.save(ctx, &c, admin.ID, "account.disabled")
}
