// The manual aggregation station: a keyboard-wedge scanner types into the
// focused field and ends with Enter. Scan a parent, then its children;
// each refusal is shown at once with its reason, a sound and a colour.
import { strings as ops, merge, css, beep } from './ops.js';

export const strings = merge(ops, {
  zh: {
    st_title: '人工关联工位', st_scan: '扫描', st_scan_hint: '扫描枪扫描后自动回车；也可手动输入后按回车', st_parent: '包装码', st_none: '未打开包装：先扫描包装标签，或新建包装码',
    st_new: '新建 L{0} 包装码', st_close: '零箱关闭', st_cancel: '取消当前包装', st_reprint: '补打标签', st_children: '已扫入', st_level: '级别',
    st_ok_parent: '已打开包装 {0}', st_ok_child: '已扫入 {0} / {1}', st_packed: '装箱完成：{0}（{1} 件{2}）', st_partial: '，零箱', st_label: '，标签已打印',
    st_refused: '拒绝：{0}', st_close_title: '零箱关闭', st_close_body: '当前包装只有 {0} / {1} 件。请选择原因：', st_reason: '原因', st_note: '说明（可选）',
    st_r_end: '批次尾数', st_r_short: '来料不足', st_r_damaged: '产品损坏剔除', st_r_other: '其他',
    st_reprint_title: '补打包装标签', st_reprint_code: '包装码', st_reprint_done: '标签已补打：{0}', st_cancelled: '已取消包装，未写入任何记录',
    st_to_scan: '请将新标签贴到包装 {0} 上，然后扫描该标签', st_label_ok: '标签已核验：{0}',
  },
  en: {
    st_title: 'Manual aggregation station', st_scan: 'Scan', st_scan_hint: 'the scanner ends each scan with Enter; or type a code and press Enter', st_parent: 'Parent', st_none: 'No parent open: scan a parent label, or make a new parent code',
    st_new: 'New L{0} parent', st_close: 'Close partial', st_cancel: 'Cancel parent', st_reprint: 'Reprint label', st_children: 'Scanned in', st_level: 'Level',
    st_ok_parent: 'parent {0} opened', st_ok_child: 'scanned in {0} / {1}', st_packed: 'packed: {0} ({1} units{2})', st_partial: ', partial', st_label: ', label printed',
    st_refused: 'refused: {0}', st_close_title: 'Close a partial parent', st_close_body: 'This parent holds {0} of {1}. Why close it short?', st_reason: 'Reason', st_note: 'Note (optional)',
    st_r_end: 'end of batch', st_r_short: 'short of units', st_r_damaged: 'damaged units taken out', st_r_other: 'other',
    st_reprint_title: 'Reprint a parent label', st_reprint_code: 'Parent code', st_reprint_done: 'label reprinted: {0}', st_cancelled: 'parent dropped; nothing was written',
    st_to_scan: 'apply the new label to parent {0}, then scan it', st_label_ok: 'label verified: {0}',
  },
});

export async function render(root, app) {
  css();
  const { el } = app;
  const t = app.t.bind(app);
  const scan = el('input', { class: 'scan', id: 'scan', autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', enterkeyhint: 'done', 'aria-label': t('st_scan') });
  const box = el('div', { class: 'scanbox', id: 'scanbox' }, el('label', { for: 'scan', class: 'fld' }, el('span', {}, t('st_scan'))), scan,
    el('div', { class: 'hint' }, t('st_scan_hint')), el('div', { class: 'verdict', id: 'verdict' }));
  const verdict = box.querySelector('#verdict');
  const state = el('div', { id: 'st-state' });
  let view = { children: [] };
  let dialogOpen = false;

  const say = (ok, msg) => {
    beep(ok);
    box.className = 'scanbox ' + (ok ? 'ok' : 'no');
    verdict.className = 'verdict ' + (ok ? 'ok' : 'no');
    verdict.textContent = msg;
    verdict.dataset.ok = ok ? '1' : '0';
  };
  const draw = (v) => {
    view = v;
    const n = v.children?.length || 0;
    state.replaceChildren(v.parent
      ? el('div', {}, el('dl', { class: 'kv' }, el('dt', {}, t('st_parent')), el('dd', { class: 'code' }, v.parent), el('dt', {}, t('st_level')), el('dd', {}, 'L' + v.level)),
        el('div', { class: 'ratio', id: 'st-ratio' }, String(n), el('small', {}, ' / ' + v.ratio)),
        el('div', { class: 'bar' }, el('div', { style: undefined, 'data-w': String(Math.round((100 * n) / (v.ratio || 1))) })),
        el('h3', {}, t('st_children')), el('ol', { class: 'code' }, ...(v.children || []).slice(-12).map((c) => el('li', {}, c))))
      : v.label_to_scan
        ? el('div', { class: 'sub', id: 'st-to-scan' }, t('st_to_scan', v.label_to_scan))
        : el('div', { class: 'sub' }, t('st_none')));
    const bar = state.querySelector('.bar > div');
    if (bar) bar.style.width = bar.dataset.w + '%'; // CSP: no inline style attribute; set through the DOM
  };
  const reasonOf = (r) => { const k = 'sr_' + r.reason; const s = t(k); return s === k ? r.message : s; };
  const answer = (d, okMsg) => {
    if (d.refused) { say(false, t('st_refused', reasonOf(d.refused))); draw(d.station); return; }
    const v = d.station;
    if (view.label_to_scan && !v.label_to_scan && v.packed?.verified) say(true, t('st_label_ok', view.label_to_scan));
    else if (v.packed && !v.parent) say(true, t('st_packed', v.packed.parent, v.packed.children, (v.packed.partial ? t('st_partial') : '') + (v.packed.labelled ? t('st_label') : '')));
    else say(true, okMsg(v));
    draw(v);
  };
  const post = async (path, body, okMsg) => {
    try { answer(await app.api('POST', path, body), okMsg); } catch (e) { say(false, e.message); }
    scan.focus();
  };
  scan.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    const s = scan.value.trim();
    scan.value = '';
    if (!s) return;
    const opening = !view.parent;
    post('/station/scan', { scan: s }, (v) => (opening ? t('st_ok_parent', v.parent) : t('st_ok_child', v.children.length, v.ratio)));
  });
  // The field keeps the focus (a scanner types wherever the focus is).
  scan.addEventListener('blur', () => setTimeout(() => { if (!dialogOpen && document.activeElement?.tagName !== 'INPUT' && document.activeElement?.tagName !== 'SELECT' && document.activeElement?.tagName !== 'TEXTAREA') scan.focus(); }, 0));

  const reasonPicker = () => {
    const sel = el('select', { id: 'st-reason' }, ...['st_r_end', 'st_r_short', 'st_r_damaged', 'st_r_other'].map((k) => el('option', { value: k.slice(5) }, t(k))));
    const note = el('input', { id: 'st-note', autocomplete: 'off' });
    return { sel, note, nodes: [el('label', { class: 'fld' }, el('span', {}, t('st_reason')), sel), el('label', { class: 'fld' }, el('span', {}, t('st_note')), note)],
      value: () => sel.value + (note.value.trim() ? ': ' + note.value.trim() : '') };
  };
  const closePartial = async () => {
    const r = reasonPicker();
    dialogOpen = true;
    const ok = await app.confirm(t('st_close_title'), el('div', {}, el('p', {}, t('st_close_body', view.children?.length || 0, view.ratio || 0)), ...r.nodes), t('st_close'));
    dialogOpen = false;
    if (ok) post('/station/close', { reason: r.value() }, () => '');
    else scan.focus();
  };
  const reprint = async () => {
    const code = el('input', { id: 'st-reprint-code', class: 'code', autocomplete: 'off' });
    const r = reasonPicker();
    dialogOpen = true;
    const ok = await app.confirm(t('st_reprint_title'), el('div', {}, el('label', { class: 'fld' }, el('span', {}, t('st_reprint_code')), code), ...r.nodes), t('st_reprint'));
    dialogOpen = false;
    if (!ok) { scan.focus(); return; }
    try { await app.api('POST', '/station/reprint', { code: code.value.trim(), reason: r.value() }); say(true, t('st_reprint_done', code.value.trim())); } catch (e) { say(false, e.message); }
    scan.focus();
  };
  // The parent levels the batch aggregates (a new parent code of each).
  let levels = [2];
  try { const lv = ((await app.api('GET', '/line')).line_overview?.levels || []).map((x) => x.level).filter((l) => l > 1); if (lv.length) levels = lv; } catch { /* keep L2 */ }
  root.append(el('div', { class: 'ops' },
    el('section', { class: 'card' }, el('h1', {}, t('st_title')), box,
      el('div', { class: 'acts' }, ...levels.map((l) => el('button', { class: 'btn', type: 'button', 'data-new': String(l), onclick: () => post('/station/new', { level: l }, (v) => t('st_ok_parent', v.parent)) }, t('st_new', l))),
        el('button', { class: 'btn', type: 'button', id: 'st-close', onclick: closePartial }, t('st_close')),
        el('button', { class: 'btn danger', type: 'button', id: 'st-cancel', onclick: () => post('/station/cancel', undefined, () => t('st_cancelled')) }, t('st_cancel')),
        el('button', { class: 'btn', type: 'button', id: 'st-reprint', onclick: reprint }, t('st_reprint')))),
    el('section', { class: 'card' }, state)));
  try { draw((await app.api('GET', '/station')).station); } catch (e) { say(false, e.message); }
  scan.focus();
}
