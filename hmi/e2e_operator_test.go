package hmi_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tracline/tracline/aggregation"
	"github.com/tracline/tracline/line"
	"github.com/tracline/tracline/tracecode"
)

// TestBrowserOperator drives the operator's screens in headless Chromium
// at 1280×800 over a real line.Line: a work order refused on a field, then
// started; the challenge test; counters rising; hold and unhold; the
// packing station refusing a wrong and a duplicate scan, then packing; a
// rework with its preview; the pools; Chinese, then English.
func TestBrowserOperator(t *testing.T) {
	o := newOpRig(t, line.ChallengeStep{Name: "good", Expect: line.ReasonNone}, line.ChallengeStep{Name: "no-read", Expect: line.ReasonNoRead})
	b := newBrowser(t, "", 120*time.Second, 15*time.Second)
	ctx, dir, shot, do, wait := b.ctx, b.dir, b.shot, b.do, b.wait
	js := func(what, script string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](script+`; true`)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// set types a value into a form field as the user would (input event).
	set := func(sel, v string) {
		t.Helper()
		js("set "+sel, `(() => { const e = document.querySelector(`+strconv.Quote(sel)+`); e.value = `+strconv.Quote(v)+`;
			e.dispatchEvent(new Event('input')); e.dispatchEvent(new Event('change')); })()`)
	}
	state := func(s string) {
		t.Helper()
		wait("state "+s, `document.querySelector('#state')?.dataset.state === '`+s+`'`)
	}
	scan := func(code string) {
		t.Helper()
		do("scan "+code, chromedp.SendKeys(chromedp.CSS("#scan"), code+kb.Enter))
	}
	verdict := func(ok bool, words string) {
		t.Helper()
		want := "1"
		if !ok {
			want = "0"
		}
		wait("verdict "+words, `(() => { const v = document.querySelector('#verdict'); return v.dataset.ok === '`+want+`' && v.textContent.includes(`+strconv.Quote(words)+`); })()`)
	}

	do("open the HMI", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(o.ts.URL), chromedp.WaitVisible(chromedp.CSS("#login-btn")),
		chromedp.SendKeys(chromedp.CSS("#user"), "operator"), chromedp.SendKeys(chromedp.CSS("#password"), "demo"), chromedp.Click(chromedp.CSS("#login-btn")))
	wait("ready for a batch", `document.querySelector('#ov-ready')?.hidden === false`)
	shot("op-01-ready-zh")

	// A work order: a refused field first (expiry before production).
	do("the batch page", chromedp.Click(chromedp.CSS(`#nav a[href="#/batch"]`)))
	wait("the products", `document.querySelectorAll('select[name=product] option').length === 2`)
	set("select[name=product]", "amox-gs1")
	set("input[name=batch]", "WO-E2E-1")
	set("input[name=production_date]", "2026-11-01")
	set("input[name=expiry]", "2026-10-01")
	set("input[name=planned]", "20")
	set("select[name=levels]", "2")
	do("check", chromedp.Click(chromedp.CSS("#wo-check")))
	wait("the expiry refused next to its field", `document.querySelector('input[name=expiry]').closest('.fld').dataset.code === 'expiry_before_production' &&
		document.querySelector('input[name=expiry]').closest('.fld').textContent.includes('有效期必须晚于生产日期')`)
	shot("op-02-workorder-refused")
	do("start refused", chromedp.Click(chromedp.CSS("#wo-start")))
	if bs, err := o.store.Batches(context.Background()); err != nil || len(bs) != 0 {
		t.Fatalf("a refused work order started a batch: %v %v", bs, err)
	}
	set("input[name=expiry]", "2028-10-31")
	wait("the work order fine", `!!document.querySelector('#wo-summary .okbox')`)
	do("start", chromedp.Click(chromedp.CSS("#wo-start")))
	wait("the batch on the overview", `document.querySelector('#ov-batch')?.textContent === 'WO-E2E-1'`)
	do("reset", chromedp.Click(chromedp.CSS(`[data-cmd=reset]`)))
	state("Idle")
	do("start", chromedp.Click(chromedp.CSS(`[data-cmd=start]`)))
	state("Execute")

	// The challenge test: a good unit, then a no-read.
	o.unit(1, true)
	o.unit(2, false)
	o.waitFor("the challenge passed", func(ov line.Overview) bool { return ov.Challenge.Done && ov.Challenge.Passed })
	var units []tracecode.Code
	for i := uint32(3); i <= 8; i++ {
		units = append(units, o.unit(i, true))
	}
	o.waitFor("6 good", func(ov line.Overview) bool { return ov.Counts.Good >= 6 })
	passed := o.line.RunnerView().Snapshot().Counters.Passed
	wait("the counters risen on the page", `document.querySelector('[data-k=passed]')?.textContent === '`+strconv.FormatUint(passed, 10)+`'`)
	shot("op-03-running")
	do("hold", chromedp.Click(chromedp.CSS(`[data-cmd=hold]`)))
	state("Held")
	do("unhold", chromedp.Click(chromedp.CSS(`[data-cmd=unhold]`)))
	state("Execute")

	do("the batch page again", chromedp.Click(chromedp.CSS(`#nav a[href="#/batch"]`)))
	wait("the challenge passed", `document.querySelector('#ch-status')?.textContent === '挑战测试通过'`)
	wait("a batch open", `document.querySelector('#wo-start').disabled`)
	shot("op-04-challenge")

	for _, u := range units {
		waitCommissioned(t, o.store, u)
	}
	// The packing station: a wrong code refused, a parent, a duplicate refused, packed.
	do("the station", chromedp.Click(chromedp.CSS(`#nav a[href="#/station"]`)), chromedp.WaitVisible(chromedp.CSS("#scan")))
	wait("the scan field focused", `document.activeElement?.id === 'scan'`)
	scan("NOT-A-CODE-123")
	verdict(false, "无法识别的码")
	shot("op-05-station-wrong")
	do("a new L2 parent", chromedp.Click(chromedp.CSS(`[data-new="2"]`)))
	verdict(true, "已打开包装")
	scan(string(units[0]))
	verdict(true, "已扫入 1 / 2")
	scan(string(units[0]))
	verdict(false, "已扫描过（重复）")
	shot("op-06-station-duplicate")
	scan(string(units[1]))
	verdict(true, "装箱完成")
	info, err := o.store.Lookup(context.Background(), units[0])
	if err != nil || info.Parent == "" {
		t.Fatalf("not packed: %+v %v", info, err)
	}
	// Its new label: apply it and scan it (nothing else opens before).
	wait("the label to scan", `document.querySelector('#st-to-scan')?.textContent.includes(`+strconv.Quote(string(info.Parent))+`)`)
	shot("op-07-station-packed")
	do("a new L2 parent too soon", chromedp.Click(chromedp.CSS(`[data-new="2"]`)))
	verdict(false, "请先贴上新打印的包装标签并扫描它")
	scan(string(info.Parent))
	verdict(true, "标签已核验")

	// Rework: decommission a loose unit, after its preview.
	do("rework", chromedp.Click(chromedp.CSS(`#nav a[href="#/rework"]`)), chromedp.WaitVisible(chromedp.CSS("#rw-code")))
	set("#rw-code", string(units[2]))
	set("#rw-note", "外盒压坏")
	do("preview", chromedp.Click(chromedp.CSS("#rw-preview-btn")))
	wait("the preview", `document.querySelector('#rw-preview tbody')?.textContent.includes('已停用')`)
	shot("op-08-rework-preview")
	do("carry it out", chromedp.Click(chromedp.CSS("#rw-do")))
	wait("the confirmation", `document.querySelector('#dialog').open`)
	do("confirm", chromedp.Click(chromedp.CSS(`#dialog [data-act=ok]`)))
	wait("done", `!!document.querySelector('#rw-ok')`)
	if info, err := o.store.Code(context.Background(), units[2]); err != nil || info.State != aggregation.StateDecommissioned {
		t.Fatalf("after the rework: %+v %v", info, err)
	}

	// English.
	do("English", chromedp.Click(chromedp.CSS("#lang")))
	wait("English rework", `document.querySelector('#rw-preview-btn')?.textContent === 'Preview'`)
	set("#rw-code", string(units[0]))
	do("a refused preview", chromedp.Click(chromedp.CSS("#rw-preview-btn")))
	wait("the refusal", `!!document.querySelector('#rw-refusal')`)
	shot("op-09-rework-refused-en")
	do("the station in English", chromedp.Click(chromedp.CSS(`#nav a[href="#/station"]`)), chromedp.WaitVisible(chromedp.CSS("#scan")))
	do("a new L2 parent", chromedp.Click(chromedp.CSS(`[data-new="2"]`)))
	verdict(true, "opened")
	scan(string(units[1]))
	verdict(false, "already packed")
	shot("op-10-station-en")
	do("cancel the parent", chromedp.Click(chromedp.CSS("#st-cancel")))
	verdict(true, "nothing was written")
	do("pools", chromedp.Click(chromedp.CSS(`#nav a[href="#/pools"]`)))
	wait("the pools", `!!document.querySelector('#pl-table tbody tr')`)
	// A code file from the browser: a bad one refused whole with its lines, then the good one.
	good, err := os.ReadFile("../examples/codes/8021762-L1.txt")
	if err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(t.TempDir(), "bad.txt")
	if err := os.WriteFile(badFile, append([]byte("12345\n"), good[:210]...), 0o644); err != nil {
		t.Fatal(err)
	}
	goodFile, err := filepath.Abs("../examples/codes/8021762-L1.txt")
	if err != nil {
		t.Fatal(err)
	}
	do("a bad file", chromedp.SetUploadFiles(chromedp.CSS("#pl-file"), []string{badFile}), chromedp.Click(chromedp.CSS("#pl-go")))
	wait("its bad line", `document.querySelector('#pl-bad tbody')?.textContent.includes('5 digits')`)
	shot("op-11-pools-refused-en")
	do("the good file", chromedp.SetUploadFiles(chromedp.CSS("#pl-file"), []string{goodFile}), chromedp.Click(chromedp.CSS("#pl-go")))
	wait("imported", `document.querySelector('#pl-table tr[data-pool="8021762-L1"]')?.textContent.includes('3,000')`)
	shot("op-12-pools-en")
	do("the batch page in English", chromedp.Click(chromedp.CSS(`#nav a[href="#/batch"]`)))
	wait("English challenge", `document.querySelector('#ch-status')?.textContent === 'Challenge test passed'`)
	shot("op-13-batch-en")

	// Complete (asks first): the line is ready for the next batch.
	do("overview", chromedp.Click(chromedp.CSS(`#nav a[href="#/overview"]`)))
	state("Execute")
	do("complete", chromedp.Click(chromedp.CSS(`[data-cmd=complete]`)))
	wait("the confirmation", `document.querySelector('#dialog').open`)
	do("confirm", chromedp.Click(chromedp.CSS(`#dialog [data-act=ok]`)))
	wait("ready for the next batch", `document.querySelector('#ov-ready')?.hidden === false`)
	shot("op-14-complete-ready-en")
	t.Logf("screenshots in %s", dir)
}
