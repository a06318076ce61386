package accounts

import (
	"context"

	"github.com/tracline/tracline/handoff/release"
)

// Signer adapts the accounts to release.Authenticator: QA's electronic
// signature (release.Desk.Sign) and the release policy (release.SetConfig)
// re-check the password here. A failure counts towards the lock-out and is
// journaled as "login.failed" (what: authenticate); the signature itself is
// journaled by the release desk. The signer's full name is the account's
// Name; its roles are the account's.
func Signer(a *Accounts) release.Authenticator { return signer{a} }

type signer struct{ a *Accounts }

func (s signer) Authenticate(ctx context.Context, user, password string) (release.Signer, error) {
	u, err := s.a.Authenticate(ctx, user, password)
	if err != nil {
		return release.Signer{}, err
	}
	roles := make([]string, len(u.Roles))
	for i, r := range u.Roles {
		roles[i] = string(r)
	}
	return release.Signer{User: u.ID, FullName: u.Name, Roles: roles}, nil
}
