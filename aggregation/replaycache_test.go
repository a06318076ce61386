package aggregation

import "testing"

// TestVerifyAgreesWithScratchReplay runs verify's cases with Verify checked
// against the older replay through a scratch Badger store (verifyScratch,
// with a replay cache of a few codes per generation, so that codes leave
// it and are read back from the scratch store mid-replay): both must name
// the same problems, clean ledgers and tampered ones alike.
func TestVerifyAgreesWithScratchReplay(t *testing.T) {
	old := replayGen
	replayGen = 3
	verifyCrossCheck = true
	defer func() { replayGen, verifyCrossCheck = old, false }()
	for name, f := range map[string]func(*testing.T){
		"tampered":         TestVerifyNamesTamperedEvent,
		"foreign link":     TestVerifyNamesForeignLink,
		"tampered tables":  TestVerifyNamesTamperedProjections,
		"gate and label":   TestVerifyNamesGateAndLabelDisagreements,
		"pool return":      TestPoolReturnAndReallocate,
		"generated return": TestGeneratedReturnAndStream,
		"reject":           TestRejectUnit,
		"pipeline model":   TestPipelineModel,
		"pool refills":     TestPipelinePoolRefills,
		"backup":           TestBackupRestore,
		"trim":             TestTrimPools,
		"record and trail": TestRecordMetaAndTrail,
	} {
		t.Run(name, f)
	}
}

func TestReplayCacheGenerations(t *testing.T) {
	old := replayGen
	replayGen = 2
	defer func() { replayGen = old }()
	r := newReplayCache()
	r.put(codeView{code: "A", rec: rec{State: StateSent, Seqs: []uint64{1}}})
	r.put(codeView{code: "B"})
	r.put(codeView{code: "C"}) // A and B become the old generation
	if cv, ok := r.get("A"); !ok || cv.rec.State != StateSent || len(cv.rec.Seqs) != 1 {
		t.Fatalf("A after one turn: %+v %v", cv, ok)
	}
	r.put(codeView{code: "D"}) // A (used again) and C move on; B is dropped
	if _, ok := r.get("B"); ok {
		t.Error("B outlived two generations")
	}
	r.del("A")
	if _, ok := r.get("A"); ok {
		t.Error("A still there after del")
	}
	cv, _ := r.get("D")
	cv.rec.Seqs = append(cv.rec.Seqs, 9)
	if cv2, _ := r.get("D"); len(cv2.rec.Seqs) != 0 {
		t.Error("get shares Seqs with the cache")
	}
}
