package accounts_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/internal/accounts"
	"github.com/tracline/tracline/internal/accounts/accountstest"
)

// cheap keeps the tests fast; the defaults are checked in TestDefaultParams.
var cheap = accounts.Params{Time: 1, Memory: 64, Threads: 1}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func open(t *testing.T, j *accountstest.Journal, demo bool, clk *clock) *accounts.Accounts {
	t.Helper()
	a, err := accounts.Open(context.Background(), accounts.Config{Params: cheap, Demo: demo, Now: clk.now}, j, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)} }

func TestHash(t *testing.T) {
	h := accounts.Hash("correct horse", cheap)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if !accounts.CheckHash("correct horse", h) || accounts.CheckHash("correct hors", h) {
		t.Fatal("CheckHash")
	}
	if h2 := accounts.Hash("correct horse", cheap); h2 == h {
		t.Fatal("same salt twice")
	}
	for _, bad := range []string{"", "$argon2id$", "$argon2i$v=19$m=64,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=64,t=0,p=1$AAAA$AAAA",
		"$argon2id$v=19$m=99999999,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=64,t=1,p=1$!!$AAAA"} {
		if accounts.CheckHash("x", bad) {
			t.Errorf("CheckHash accepted %q", bad)
		}
	}
}

func TestDefaultParams(t *testing.T) {
	p := accounts.DefaultParams
	if p.Time < 1 || p.Memory < 46*1024 || p.Threads != 1 {
		t.Fatalf("defaults are not OWASP's m=46 MiB, t=1, p=1: %+v", p)
	}
}

func TestProductionSetup(t *testing.T) {
	j := &accountstest.Journal{}
	clk := newClock()
	a := open(t, j, false, clk)
	ctx := context.Background()
	if !a.NeedsSetup() || len(a.SetupToken()) != 32 || len(a.List()) != 0 {
		t.Fatalf("fresh production: needs setup %t, token %q, users %v", a.NeedsSetup(), a.SetupToken(), a.List())
	}
	if _, err := a.Login(ctx, "admin", "demo", "1.2.3.4"); !errors.Is(err, accounts.ErrBadLogin) {
		t.Fatalf("no default password: %v", err)
	}
	tok := a.SetupToken()
	if _, err := a.Setup(ctx, "wrong", "alice", "Alice Admin", "long enough", false); !errors.Is(err, accounts.ErrBadToken) {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := a.Setup(ctx, tok, "alice", "Alice Admin", "short", false); !errors.Is(err, accounts.ErrInvalid) {
		t.Fatalf("short password: %v", err)
	}
	u, err := a.Setup(ctx, tok, "alice", "Alice Admin", "long enough", false)
	if err != nil || !u.Has(accounts.RoleAdmin) {
		t.Fatalf("setup: %+v %v", u, err)
	}
	if _, err := a.Setup(ctx, tok, "bob", "Bob", "long enough", false); !errors.Is(err, accounts.ErrSetupDone) {
		t.Fatalf("second setup: %v", err)
	}
	// Reopened from the journal: the admin is there, no setup.
	b := open(t, j, false, clk)
	if b.NeedsSetup() {
		t.Fatal("reopened: needs setup again")
	}
	if _, err := b.Login(ctx, "alice", "long enough", "1.2.3.4"); err != nil {
		t.Fatal(err)
	}
	for _, e := range j.Entries {
		if strings.Contains(e.Value, "long enough") {
			t.Fatalf("password in the journal: %+v", e)
		}
	}
}

func TestDemo(t *testing.T) {
	j := &accountstest.Journal{}
	a := open(t, j, true, newClock())
	if a.NeedsSetup() {
		t.Fatal("demo needs setup")
	}
	for _, id := range []string{"operator", "qa", "engineer", "admin"} {
		u, err := a.Login(context.Background(), id, "demo", "127.0.0.1")
		if err != nil || !u.Has(accounts.Role(id)) {
			t.Errorf("%s: %+v %v", id, u, err)
		}
	}
	n := j.Len()
	open(t, j, true, newClock()) // reopened: nothing created twice
	if j.Len() != n {
		t.Fatalf("reopening demo journaled %d entries", j.Len()-n)
	}
}

func TestLoginJournalAndLockout(t *testing.T) {
	j := &accountstest.Journal{}
	clk := newClock()
	a := open(t, j, true, clk)
	ctx := context.Background()
	start := j.Len()
	for i := range 4 {
		if _, err := a.Login(ctx, "operator", "nope", "10.0.0.1"); !errors.Is(err, accounts.ErrBadLogin) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	if _, err := a.Login(ctx, "operator", "nope", "10.0.0.2"); !errors.Is(err, accounts.ErrLocked) {
		t.Fatalf("fifth failure: %v", err)
	}
	if _, err := a.Login(ctx, "operator", "demo", "10.0.0.3"); !errors.Is(err, accounts.ErrLocked) {
		t.Fatalf("locked, right password: %v", err)
	}
	clk.add(16 * time.Minute)
	if _, err := a.Login(ctx, "operator", "demo", "10.0.0.3"); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
	a.Logout(ctx, "operator", "user")
	got := j.Types()[start:]
	want := []string{"login.failed:operator", "login.failed:operator", "login.failed:operator", "login.failed:operator",
		"login.failed:operator", "login.failed:operator", "login:operator", "logout:operator"}
	if !slices.Equal(got, want) {
		t.Fatalf("journal %v, want %v", got, want)
	}
}

func TestRateLimit(t *testing.T) {
	j := &accountstest.Journal{}
	clk := newClock()
	a := open(t, j, true, clk)
	ctx := context.Background()
	users := []string{"operator", "qa", "engineer", "admin", "nobody"}
	var err error
	for i := 0; i < 20; i++ {
		_, err = a.Login(ctx, users[i%5], "guess", "10.9.9.9")
	}
	if _, err = a.Login(ctx, "qa", "demo", "10.9.9.9"); !errors.Is(err, accounts.ErrRateLimited) {
		t.Fatalf("21st attempt in a minute: %v", err)
	}
	if _, err = a.Login(ctx, "qa", "demo", "10.9.9.8"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	clk.add(61 * time.Second)
	if _, err = a.Login(ctx, "engineer", "demo", "10.9.9.9"); err != nil {
		t.Fatalf("a minute later: %v", err)
	}
}

func TestAdminActions(t *testing.T) {
	j := &accountstest.Journal{}
	clk := newClock()
	a := open(t, j, true, clk)
	ctx := context.Background()
	admin, _ := a.Get("admin")
	op, _ := a.Get("operator")
	cases := []struct {
		name string
		by   accounts.User
		u    accounts.User
		pw   string
		want error
	}{
		{"not admin", op, accounts.User{ID: "x1", Name: "X", Roles: []accounts.Role{accounts.RoleQA}}, "password1", accounts.ErrForbidden},
		{"bad id", admin, accounts.User{ID: "X Y", Name: "X", Roles: []accounts.Role{accounts.RoleQA}}, "password1", accounts.ErrInvalid},
		{"no roles", admin, accounts.User{ID: "x1", Name: "X"}, "password1", accounts.ErrInvalid},
		{"bad role", admin, accounts.User{ID: "x1", Name: "X", Roles: []accounts.Role{"root"}}, "password1", accounts.ErrInvalid},
		{"exists", admin, accounts.User{ID: "qa", Name: "X", Roles: []accounts.Role{accounts.RoleQA}}, "password1", accounts.ErrExists},
		{"inspector without end", admin, accounts.User{ID: "insp", Name: "NMPA", Roles: []accounts.Role{accounts.RoleInspector}}, "password1", accounts.ErrInvalid},
		{"inspector and more", admin, accounts.User{ID: "insp", Name: "NMPA", Roles: []accounts.Role{accounts.RoleInspector, accounts.RoleQA}, Expires: clk.now().Add(time.Hour)}, "password1", accounts.ErrInvalid},
		{"short password", admin, accounts.User{ID: "x1", Name: "X", Roles: []accounts.Role{accounts.RoleQA}}, "pw", accounts.ErrInvalid},
		{"ok", admin, accounts.User{ID: "x1", Name: "X", Roles: []accounts.Role{accounts.RoleQA}}, "password1", nil},
	}
	for _, tc := range cases {
		n := j.Len()
		_, err := a.Create(ctx, tc.by, tc.u, tc.pw)
		if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if err != nil && j.Len() != n {
			t.Errorf("%s: refused but journaled", tc.name)
		}
	}
	// Inspector: granted for two hours, expires by itself.
	if _, err := a.Create(ctx, admin, accounts.User{ID: "insp", Name: "NMPA inspector", Roles: []accounts.Role{accounts.RoleInspector},
		Expires: clk.now().Add(2 * time.Hour)}, "inspect-me"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Login(ctx, "insp", "inspect-me", "1.1.1.1"); err != nil {
		t.Fatal(err)
	}
	clk.add(2 * time.Hour)
	if _, err := a.Login(ctx, "insp", "inspect-me", "1.1.1.1"); !errors.Is(err, accounts.ErrExpired) {
		t.Fatalf("expired inspector: %v", err)
	}
	if _, err := a.Get("insp"); !errors.Is(err, accounts.ErrExpired) {
		t.Fatalf("Get expired: %v", err)
	}
	// Roles.
	if _, err := a.SetRoles(ctx, op, "qa", []accounts.Role{accounts.RoleAdmin}); !errors.Is(err, accounts.ErrForbidden) {
		t.Fatal(err)
	}
	if _, err := a.SetRoles(ctx, admin, "admin", []accounts.Role{accounts.RoleQA}); !errors.Is(err, accounts.ErrInvalid) {
		t.Fatalf("last admin demoted: %v", err)
	}
	u, err := a.SetRoles(ctx, admin, "qa", []accounts.Role{accounts.RoleQA, accounts.RoleOperator})
	if err != nil || !u.Has(accounts.RoleOperator) {
		t.Fatal(u, err)
	}
	if e := j.Entries[len(j.Entries)-1]; e.Type != "account.roles" || e.User != "admin" || e.Key != "account/qa" {
		t.Fatalf("role change journaled as %+v", e)
	}
	// Passwords.
	if err := a.ChangePassword(ctx, "operator", "wrong", "new password"); !errors.Is(err, accounts.ErrBadLogin) {
		t.Fatal(err)
	}
	if err := a.ChangePassword(ctx, "operator", "demo", "new password"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "operator", "new password"); err != nil {
		t.Fatal(err)
	}
	if err := a.ResetPassword(ctx, admin, "operator", "reset pass"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "operator", "reset pass"); err != nil {
		t.Fatal(err)
	}
	if err := a.SetDisabled(ctx, admin, "operator", true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Login(ctx, "operator", "reset pass", "1.1.1.2"); !errors.Is(err, accounts.ErrDisabled) {
		t.Fatal(err)
	}
	// Reopened from the journal, every change is there.
	b := open(t, j, true, clk)
	if u, err := b.Get("qa"); err != nil || !u.Has(accounts.RoleOperator) {
		t.Fatal(u, err)
	}
	if _, err := b.Get("operator"); !errors.Is(err, accounts.ErrDisabled) {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []accounts.Config{{MaxFailures: -1}, {LockFor: -1}, {PerAddress: -1}, {MinPassword: -1},
		{Params: accounts.Params{Time: 0, Memory: 64, Threads: 1}}} {
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "accounts.") {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// TestLedger runs the accounts on a real ledger: reopened, they are there;
// the journal holds the logins.
func TestLedger(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := aggregation.Open(dir, aggregation.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	a, err := accounts.Open(ctx, accounts.Config{Params: cheap, Demo: true}, accounts.Ledger(st), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Login(ctx, "qa", "demo", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Login(ctx, "qa", "wrong", "127.0.0.1"); !errors.Is(err, accounts.ErrBadLogin) {
		t.Fatal(err)
	}
	head := st.Head()
	if _, err := a.Create(ctx, accounts.User{ID: "op", Roles: []accounts.Role{accounts.RoleOperator}}, accounts.User{ID: "x", Name: "X", Roles: []accounts.Role{accounts.RoleQA}}, "password1"); err == nil || st.Head() != head {
		t.Fatalf("refused create: %v, head %d → %d", err, head, st.Head())
	}
	var types []string
	if err := st.Events(ctx, 0, func(e aggregation.Event) error {
		if e.Kind == aggregation.EvRecord {
			types = append(types, e.Reason+":"+e.Actor.ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"account:accounts", "account:accounts", "account:accounts", "account:accounts", "login:qa", "login.failed:qa"}
	if !slices.Equal(types, want) {
		t.Fatalf("journal %v, want %v", types, want)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = aggregation.Open(dir, aggregation.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b, err := accounts.Open(ctx, accounts.Config{Params: cheap}, accounts.Ledger(st), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.NeedsSetup() || len(b.List()) != 4 {
		t.Fatalf("reopened: %v", b.List())
	}
}

// TestSigner: the release desk's Authenticator re-checks the password and
// vouches for the account's id, full name and roles; a wrong password is
// refused and counts towards the lock-out.
func TestSigner(t *testing.T) {
	j := &accountstest.Journal{}
	a, err := accounts.Open(context.Background(), accounts.Config{Demo: true, Params: accounts.Params{Time: 1, Memory: 64, Threads: 1}}, j, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := accounts.Signer(a)
	got, err := s.Authenticate(context.Background(), "qa", "demo")
	if err != nil || got.User != "qa" || got.FullName != "Demo qa" || len(got.Roles) != 1 || got.Roles[0] != "qa" {
		t.Fatalf("signer %+v, %v", got, err)
	}
	if _, err := s.Authenticate(context.Background(), "qa", "wrong"); !errors.Is(err, accounts.ErrBadLogin) {
		t.Fatalf("wrong password: %v", err)
	}
	n := 0
	for _, e := range j.Entries {
		if e.Type == "login.failed" && e.User == "qa" && strings.Contains(e.Value, "authenticate") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d failed re-authentications journaled, want 1: %+v", n, j.Entries)
	}
}
