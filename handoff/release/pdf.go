package release

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/go-pdf/fpdf"
)

// WritePDF renders the record as an A4 PDF. font is a TrueType font with
// Chinese glyphs (LoadFont); the PDF embeds only the glyphs it uses.
func WritePDF(w io.Writer, rec *Record, font []byte) error {
	if len(font) == 0 {
		return errors.New("batch record pdf: no font (LoadFont)")
	}
	p := &pdfDoc{f: fpdf.New("P", "mm", "A4", "")}
	f := p.f
	f.SetMargins(12, 12, 12)
	f.SetAutoPageBreak(true, 14)
	f.AddUTF8FontFromBytes("cjk", "", font)
	if err := f.Error(); err != nil {
		return fmt.Errorf("batch record pdf: font: %w", err)
	}
	f.SetTitle("批记录 Batch record "+rec.Header.Batch, true)
	f.SetCreator("Tracline", true)
	f.AliasNbPages("")
	f.SetFooterFunc(func() {
		f.SetY(-10)
		f.SetFont("cjk", "", 7)
		f.SetTextColor(90, 90, 90)
		f.CellFormat(0, 4, fmt.Sprintf("批记录 %s · SHA-256 %s · %d/{nb}", rec.Header.Batch, rec.Hash, f.PageNo()), "", 0, "C", false, 0, "")
		f.SetTextColor(0, 0, 0)
	})
	f.AddPage()
	p.render(rec)
	if err := f.Output(w); err != nil {
		return fmt.Errorf("batch record pdf: %w", err)
	}
	return nil
}

type pdfDoc struct{ f *fpdf.Fpdf }

const (
	pageW = 186.0 // A4 width less margins
	lineH = 4.2
)

func (p *pdfDoc) h1(s string) {
	p.f.SetFont("cjk", "", 15)
	p.f.MultiCell(pageW, 7, s, "", "L", false)
}

func (p *pdfDoc) h2(s string) {
	f := p.f
	if f.GetY() > 245 { // keep a heading with its first rows
		f.AddPage()
	}
	f.Ln(3)
	f.SetFont("cjk", "", 11.5)
	f.CellFormat(pageW, 6, s, "B", 1, "L", false, 0, "")
	f.Ln(1)
	f.SetFont("cjk", "", 8.5)
}

func (p *pdfDoc) para(s string, r, g, b int) {
	p.f.SetFont("cjk", "", 8.5)
	p.f.SetTextColor(r, g, b)
	p.f.MultiCell(pageW, lineH, s, "", "L", false)
	p.f.SetTextColor(0, 0, 0)
}

// row draws one table row: each cell wraps within its width, the row is
// as high as its tallest cell and moves to a new page whole.
func (p *pdfDoc) row(widths []float64, cells []string, header bool, colors map[int][3]int) {
	f := p.f
	f.SetFont("cjk", "", 8.5)
	n := 1
	lines := make([][]string, len(cells))
	for i, c := range cells {
		lines[i] = splitLines(f, c, widths[i]-2)
		n = max(n, len(lines[i]))
	}
	h := float64(n)*lineH + 1
	_, pageH := f.GetPageSize()
	if f.GetY()+h > pageH-14 {
		f.AddPage()
	}
	x, y := f.GetX(), f.GetY()
	for i := range cells {
		if header {
			f.SetFillColor(235, 235, 235)
			f.Rect(x, y, widths[i], h, "FD")
		} else {
			f.Rect(x, y, widths[i], h, "D")
		}
		if c, ok := colors[i]; ok {
			f.SetTextColor(c[0], c[1], c[2])
		}
		for j, l := range lines[i] {
			f.Text(x+1, y+0.5+lineH*float64(j+1)-1, l)
		}
		f.SetTextColor(0, 0, 0)
		x += widths[i]
	}
	f.SetXY(f.GetX(), y+h)
}

// splitLines wraps s to width w (mm), honouring newlines; a word longer
// than the width (a code, a hash, Chinese text) is broken where it must.
func splitLines(f *fpdf.Fpdf, s string, w float64) []string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		if para == "" {
			out = append(out, "")
			continue
		}
		line := ""
		for _, r := range para {
			next := line + string(r)
			if f.GetStringWidth(next) > w && line != "" {
				// break at the last space if there is one in the line
				if i := strings.LastIndexByte(line, ' '); i > 0 && r != ' ' {
					out = append(out, line[:i])
					line = line[i+1:] + string(r)
					continue
				}
				out = append(out, line)
				line = strings.TrimLeft(string(r), " ")
				continue
			}
			line = next
		}
		out = append(out, line)
	}
	return out
}

var (
	green = [3]int{10, 107, 18}
	red   = [3]int{176, 0, 32}
)

func okColor(ok bool) [3]int {
	if ok {
		return green
	}
	return red
}

func markPDF(ok bool) string {
	if ok {
		return "✓"
	}
	return "×"
}

func (p *pdfDoc) render(rec *Record) {
	f := p.f
	p.h1("批记录 Batch record — " + rec.Header.Batch)
	st := "状态 State: " + rec.State.String()
	if rec.Releasable() {
		p.para(st+" · ✓ 可放行 releasable", green[0], green[1], green[2])
	} else {
		p.para(st+" · × 放行受阻 release blocked", red[0], red[1], red[2])
	}

	h := rec.Header
	p.h2("基本信息 Header")
	w4 := []float64{38, 55, 38, 55}
	p.row(w4, []string{"产品 Product", h.Product, "批号 Batch number", h.BatchNumber}, false, nil)
	p.row(w4, []string{"生产日期 Production date", h.ProductionDate, "有效期至 Expiry", h.Expiry}, false, nil)
	p.row(w4, []string{"生产线 Line", h.Line, "车间 Workshop", h.Workshop}, false, nil)
	p.row(w4, []string{"计划数量 Planned qty", strconv.FormatInt(h.PlannedQty, 10), "负责人 Manager", h.Manager}, false, nil)
	p.row(w4, []string{"包装级别 Levels", h.Levels, "批 Batch id", h.Batch}, false, nil)
	p.row(w4, []string{"开始 Started", h.StartedBy + "\n" + when(h.StartedAt), "完成 Completed", h.CompletedBy + "\n" + when(h.CompletedAt)}, false, nil)
	for _, v := range sortedMap(h.OrderExtra) {
		p.row([]float64{38, 148}, []string{v[0], v[1]}, false, nil)
	}

	p.h2("放行条件 Release rules")
	wr := []float64{20, 60, 106}
	p.row(wr, []string{"状态", "条件 Rule", "说明 Detail"}, true, nil)
	for _, r := range rec.Rules {
		ok := r.Status == RuleOK
		detail := r.Detail
		for _, it := range r.Items {
			detail += "\n• " + it
		}
		if r.More > 0 {
			detail += fmt.Sprintf("\n… 另有 %d more", r.More)
		}
		p.row(wr, []string{markPDF(ok) + " " + string(r.Status), r.Title, detail}, false, map[int][3]int{0: okColor(ok)})
	}

	p.h2("物料平衡 Reconciliation per level")
	for _, l := range rec.Levels {
		title := l.Level
		if l.Ratio > 0 {
			title += fmt.Sprintf(" (×%d)", l.Ratio)
		}
		p.row([]float64{pageW}, []string{title}, true, nil)
		for _, e := range l.Equations {
			p.row([]float64{8, pageW - 8}, []string{markPDF(e.OK), e.Text}, false, map[int][3]int{0: okColor(e.OK)})
		}
		p.row([]float64{8, pageW - 8}, []string{"", fmt.Sprintf("整件 full parents %d · 零箱 partial %d · 拼箱 mixed %d · 无码剔除 rejected units %d · 剔除门 gate passed %d / rejected %d / escaped %d · 标签 labels printed %d / verified %d",
			l.FullParents, l.PartialParents, l.MixedParents, l.RejectedUnits, l.GatePassed, l.GateRejected, l.GateEscaped, l.LabelsPrinted, l.LabelsVerified)}, false, nil)
		f.Ln(1.5)
	}

	p.h2("剔除及注销 Rejects by reason")
	if len(rec.Rejects) == 0 {
		p.para("无 None", 0, 0, 0)
	} else {
		w := []float64{40, 121, 25}
		p.row(w, []string{"类型 Kind", "原因 Reason", "数量 N"}, true, nil)
		for _, r := range rec.Rejects {
			p.row(w, []string{r.Kind, r.Reason, strconv.FormatInt(r.N, 10)}, false, nil)
		}
	}

	p.h2("挑战测试 Challenge tests")
	if len(rec.Challenges) == 0 {
		p.para("无挑战测试记录 No challenge test recorded", red[0], red[1], red[2])
	}
	for _, c := range rec.Challenges {
		res := "通过 passed"
		if !c.Passed {
			res = "未通过 failed"
		}
		p.row([]float64{pageW}, []string{fmt.Sprintf("#%d %s %s — %s %s", c.Seq, when(c.At), c.By, markPDF(c.Passed), res)}, true, nil)
		w := []float64{70, 20, 86, 10}
		for _, s := range c.Steps {
			p.row(w, []string{s.Step, strconv.FormatUint(s.Item, 10), s.Expect + " / " + s.Got, markPDF(s.OK)}, false, map[int][3]int{3: okColor(s.OK)})
		}
		f.Ln(1.5)
	}

	p.h2("报警 Alarms")
	if len(rec.Alarms) == 0 {
		p.para("无 None", 0, 0, 0)
	} else {
		w := []float64{12, 36, 28, 55, 55}
		p.row(w, []string{"#", "时间 Time", "来源 Source", "内容 Text", "确认 Acknowledged"}, true, nil)
		for _, a := range rec.Alarms {
			ack := "× 未确认 not acknowledged"
			if a.AckSeq != 0 {
				ack = "✓ " + a.AckBy + " " + when(a.AckAt)
				if a.AckNote != "" {
					ack += ": " + a.AckNote
				}
			}
			p.row(w, []string{strconv.FormatUint(a.Seq, 10), when(a.At), a.Source, a.Text, ack}, false, map[int][3]int{4: okColor(a.AckSeq != 0)})
		}
	}

	p.h2("人工操作 Manual actions")
	if len(rec.Manual) == 0 {
		p.para("无 None", 0, 0, 0)
	} else {
		w := []float64{12, 36, 22, 76, 40}
		p.row(w, []string{"#", "时间 Time", "用户 User", "操作 Action", "原因 Why"}, true, nil)
		for _, a := range rec.Manual {
			what := a.What
			if a.Detail != "" {
				what += ": " + a.Detail
			}
			p.row(w, []string{strconv.FormatUint(a.Seq, 10), when(a.At), a.User, what, a.Why}, false, nil)
		}
	}

	p.h2("审计追踪 Audit trail")
	c := okColor(rec.Chain.Verified)
	p.para(markPDF(rec.Chain.Verified)+" 哈希链 Hash chain: "+rec.Chain.Text, c[0], c[1], c[2])
	f.Ln(1)
	w := []float64{12, 36, 26, 78, 34}
	p.row(w, []string{"#", "时间 Time", "执行者 Actor", "事件 Event", "前序哈希 Prev"}, true, nil)
	for _, e := range rec.Trail {
		what := e.What
		if e.Detail != "" {
			what += ": " + e.Detail
		}
		p.row(w, []string{strconv.FormatUint(e.Seq, 10), when(e.At), e.Actor, what, shortHash(e.Prev)}, false, nil)
	}

	if len(rec.After) > 0 {
		p.h2("放行决定后 After the decision (not part of the record as signed)")
		w := []float64{12, 36, 26, 112}
		p.row(w, []string{"#", "时间 Time", "执行者 Actor", "事件 Event"}, true, nil)
		for _, e := range rec.After {
			what := e.What
			if e.Detail != "" {
				what += ": " + e.Detail
			}
			p.row(w, []string{strconv.FormatUint(e.Seq, 10), when(e.At), e.Actor, what}, false, nil)
		}
	}

	p.h2("电子签名 Electronic signatures")
	p.para(fmt.Sprintf("需要 Required: %d · 批记录 Batch record SHA-256: %s", rec.Required, rec.Hash), 0, 0, 0)
	f.Ln(1)
	if len(rec.Signatures) == 0 {
		p.para("尚未签名 Not signed yet", 0, 0, 0)
	} else {
		w := []float64{38, 36, 26, 40, 46}
		p.row(w, []string{"签名人 Signed by", "时间 Date-time (UTC)", "含义 Meaning", "意见 Comment", "状态 State"}, true, nil)
		for _, s := range rec.Signatures {
			state := sigStateZH(s.State)
			if s.Why != "" {
				state += ": " + s.Why
			}
			state += "\n" + s.RecordHash
			p.row(w, []string{s.FullName + "\n(" + s.User + ")", when(s.At), meaningZH(s.Meaning), s.Comment, state}, false, map[int][3]int{4: okColor(s.State != SigVoid)})
		}
	}
	f.Ln(2)
	p.para("生成于 Built "+rec.BuiltAt.Format("2006-01-02 15:04:05 MST")+" · Tracline", 90, 90, 90)
}

// sortedMap returns m's entries in key order.
func sortedMap(m map[string]string) [][2]string {
	out := make([][2]string, 0, len(m))
	for k, v := range m {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}
