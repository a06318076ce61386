package hmi_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserEngineer drives the engineer's screen in headless Chromium at
// 1280×800: live signal values with their ages, a test action accepted
// with no batch, refused in words while a batch runs, the latency
// histogram drawn; Chinese, then English.
func TestBrowserEngineer(t *testing.T) {
	lr := newLineRig(t)
	b := newBrowser(t, "", 90*time.Second, 15*time.Second)
	ctx, dir, shot, do, wait := b.ctx, b.dir, b.shot, b.do, b.wait
	reads := func() int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Number(document.querySelector('#view').dataset.reads || 0)`))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	do("log in as engineer", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(lr.ts.URL), chromedp.WaitVisible(chromedp.CSS("#login-btn")),
		chromedp.SendKeys(chromedp.CSS("#user"), "engineer"), chromedp.SendKeys(chromedp.CSS("#password"), "demo"), chromedp.Click(chromedp.CSS("#login-btn")))
	wait("the engineer's page in the navigation", `!!document.querySelector('#nav a[href="#/engineer"]')`)
	do("open it", chromedp.Click(chromedp.CSS(`#nav a[href="#/engineer"]`)))
	wait("three signals with values and ages",
		`document.querySelectorAll('#en-signals tr[data-signal]').length === 3 && document.querySelector('#en-signals tr[data-signal=reject] td.age').textContent === '12 ms' && document.querySelector('#en-signals tr[data-signal=tower_light] td.age').textContent === '从未读取'`)
	// Live: the page reads again by itself; the trigger's value moves.
	first := reads()
	wait("the monitor read again", `Number(document.querySelector('#view').dataset.reads) >= `+strconv.Itoa(first+2)+
		` && document.querySelector('#en-signals tr[data-signal=trigger] td.val').textContent !== '1'`)
	wait("no batch: test actions allowed", `document.querySelector('#en-busy').classList.contains('off')`)
	wait("the loaded config", `document.querySelector('#en-config [data-device=plc]')?.textContent.includes('127.0.0.1:1502')`)
	shot("10-engineer-zh")

	do("a test output with no batch", chromedp.Click(chromedp.CSS("#en-test-output")))
	wait("accepted", `document.querySelector('#en-result.ok')?.textContent.includes('done: output')`)
	if lr.eng.testsDone() != 1 {
		t.Fatalf("test actions carried out: %d", lr.eng.testsDone())
	}
	shot("11-engineer-test-ok")

	lr.startBatch("WO-BR-1")
	lr.produce(12)
	wait("the batch shown as running", `document.querySelector('#en-busy').classList.contains('on') && document.querySelector('#en-busy').textContent.includes('WO-BR-1')`)
	do("a test print while the batch runs", chromedp.Click(chromedp.CSS("#en-test-print")))
	wait("refused in words", `document.querySelector('#en-result.bad')?.textContent.includes('批次 WO-BR-1 正在运行（运行中）')`)
	if lr.eng.testsDone() != 1 {
		t.Fatalf("a test action was carried out while the batch ran")
	}
	wait("the histogram drawn", `document.querySelectorAll('#en-hist svg rect').length === 12 && document.querySelector('#en-hist-note').textContent.includes('12')`)
	wait("round trips", `document.querySelectorAll('#en-rt tbody tr').length === 3`)
	shot("12-engineer-refused-zh")

	do("English", chromedp.Click(chromedp.CSS("#lang")))
	wait("English labels", `document.querySelector('#view[data-page=engineer] h2')?.textContent === 'Signal monitor' && document.querySelectorAll('#en-signals tr[data-signal]').length === 3`)
	do("the PLC stage", chromedp.Click(chromedp.CSS(`[data-stage=plc]`)))
	wait("the PLC stage chosen", `document.querySelector('[data-stage=plc]').classList.contains('on')`)
	do("a camera read while the batch runs", chromedp.Click(chromedp.CSS("#en-test-camera")))
	wait("refused in English", `document.querySelector('#en-result.bad')?.textContent.includes('batch WO-BR-1 is running (Execute)')`)
	shot("13-engineer-refused-en")
	if lr.eng.testsDone() != 1 {
		t.Fatalf("a test action was carried out while the batch ran")
	}
	t.Logf("screenshots in %s", dir)
}
