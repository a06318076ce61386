package aggregation

import "context"

type VerifyReport struct{ Problems []string }

func (r VerifyReport) OK() bool { return len(r.Problems) == 0 }

func (s *Store) Verify(ctx context.Context) (VerifyReport, error) { return VerifyReport{}, nil }
