package hmi_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserQA drives QA's screens in headless Chromium at 1280×800, in
// Chinese then English: log in as QA, look up a code, open its batch's
// record, verify the ledger, sign the release (a wrong password refused
// first), activate (the documents go to the stand-in receivers at once),
// watch the documents' status reach delivered, open a document's log, the
// batch list, and the lookup again with the network's side.
func TestBrowserQA(t *testing.T) {
	qr := newQARig(t, qaOpts{run: true})
	b := newBrowser(t, "qa", 120*time.Second, 20*time.Second)
	b.fullPage = true
	shot, do, wait := b.shot, b.do, b.wait
	has := func(sel, text string) string {
		return `(document.querySelector(` + jsString(sel) + `)?.textContent || '').includes(` + jsString(text) + `)`
	}
	unit := string(qr.done[doneBatch][0][4])

	do("open the HMI", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(qr.ts.URL), chromedp.WaitVisible(chromedp.CSS("#login-btn")))
	do("log in as QA", chromedp.SendKeys(chromedp.CSS("#user"), "qa"), chromedp.SendKeys(chromedp.CSS("#password"), "demo"),
		chromedp.Click(chromedp.CSS("#login-btn")))
	wait("the QA navigation", has("#nav", "查码追溯"))

	// The recall question, before the release: no document yet.
	do("open the lookup", chromedp.Navigate(qr.ts.URL+"/#/qalookup"), chromedp.WaitVisible(chromedp.CSS("#lk-code")))
	do("scan a unit's code", chromedp.SendKeys(chromedp.CSS("#lk-code"), unit+"\n"))
	wait("the unit's batch", has("#lk-batch", doneBatch))
	wait("the pallet's tree", `document.querySelectorAll('#lk-same .tree li').length === 10 && document.querySelectorAll('#lk-chain li').length === 2`)
	wait("the barcode", `document.querySelector('#lk-png').complete && document.querySelector('#lk-png').naturalWidth > 0`)
	shot("01-lookup-zh")

	do("open the batch record", chromedp.Click(chromedp.CSS("#lk-batch")))
	wait("the record", `document.querySelectorAll('#rules .rule').length === 5`)
	wait("the verify rule blocked", `document.querySelector('[data-rule=verify]').classList.contains('blocked')`)
	shot("02-record-unverified")
	do("verify the ledger", chromedp.Click(chromedp.CSS("#rec-verify")))
	wait("every rule ok", `document.querySelectorAll('#rules .rule.ok').length === 5`)
	wait("the chain's status", has("#chain", "✓"))

	// The signature: a wrong password first.
	do("write the comment", chromedp.SendKeys(chromedp.CSS("#sig-comment"), "批记录审核无误，同意放行"),
		chromedp.SendKeys(chromedp.CSS("#sig-pw"), "wrong"), chromedp.Click(chromedp.CSS("#sig-btn")))
	wait("the confirmation", `document.querySelector('#dialog').open`)
	shot("03-sign-confirm")
	do("confirm", chromedp.Click(chromedp.CSS(`#dialog [data-act=ok]`)))
	wait("the wrong password refused", has("#sig-msg", "签名被拒绝"))
	shot("04-sign-refused")
	do("sign with the right password", chromedp.SendKeys(chromedp.CSS("#sig-pw"), "demo"), chromedp.Click(chromedp.CSS("#sig-btn")))
	wait("the confirmation", `document.querySelector('#dialog').open`)
	do("confirm", chromedp.Click(chromedp.CSS(`#dialog [data-act=ok]`)))
	wait("the signature on the record", `document.querySelector('#sigs .sig')?.dataset.state === 'final' && `+has("#sigs", "Demo qa")+` && `+has("#sigs", "放行"))
	wait("released", `document.querySelector('#rec-header [data-state]')?.dataset.state === 'released'`)
	shot("05-signed")

	do("activate", chromedp.SendKeys(chromedp.CSS("#act-pw"), "demo"), chromedp.Click(chromedp.CSS("#act-btn")))
	wait("three documents", `document.querySelectorAll('#rec-docs tr[data-doc]').length === 3`)
	// The outbox delivers in the background; the page follows it.
	wait("three documents delivered", `document.querySelectorAll('#rec-docs tr[data-state=delivered]').length === 3`)
	wait("handed off", `document.querySelector('#rec-header [data-state]')?.dataset.state === 'handed_off'`)
	shot("06-documents-delivered")
	do("open a document's log", chromedp.Click(chromedp.CSS("#rec-docs [data-attempts]")))
	wait("the attempts", `document.querySelectorAll('#rec-docs .attempts tr').length >= 3`)
	shot("07-document-log")
	do("the printable record", chromedp.Navigate(qr.ts.URL+"/api/v1/qa/batches/"+doneBatch+"/record.html"))
	wait("the printable record", `document.body.textContent.includes('`+doneBatch+`') && getComputedStyle(document.body).fontFamily !== ''`)
	shot("08-printable-record")
	do("back to the record", chromedp.Navigate(qr.ts.URL+"/#/qa/"+doneBatch))
	wait("the record", `document.querySelectorAll('#rules .rule').length === 5`)

	// English.
	do("English", chromedp.Click(chromedp.CSS("#lang")))
	wait("the record in English", has("#rec-release", "Electronic signatures")+` && `+has("#sigs", "released"))
	shot("09-record-en")
	do("the batch list", chromedp.Navigate(qr.ts.URL+"/#/qa"))
	wait("three batches", `document.querySelectorAll('.qa-list tr[data-batch]').length === 3`)
	shot("10-batches-en")
	do("look the code up again", chromedp.Navigate(qr.ts.URL+"/#/qalookup/"+url.PathEscape(unit)))
	wait("where the documents went", `document.querySelectorAll('#lk-net tr[data-state=delivered]').length === 3 && `+has("#lk-net", "accepted"))
	shot("11-lookup-network-en")
}

func jsString(s string) string {
	b := []byte{'\''}
	for _, r := range s {
		switch r {
		case '\'', '\\':
			b = append(b, '\\', byte(r))
		default:
			b = append(b, string(r)...)
		}
	}
	return string(append(b, '\''))
}
