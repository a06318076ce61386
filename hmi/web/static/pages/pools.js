// Code pools: what each holds and has handed out, the running batch's
// warnings, and the import of a platform code file (码段 text or zip) from
// the browser — all or nothing, the bad lines listed.
import { strings as ops, merge, css } from './ops.js';

export const strings = merge(ops, {
  zh: {
    pl_title: '码池', pl_pool: '码池', pl_product: '产品', pl_level: '级别', pl_available: '可用', pl_allocated: '已分配', pl_returned: '已退回',
    pl_import: '导入码段文件', pl_file: '码段文件（.txt 或 .zip）', pl_into: '导入到码池', pl_go: '导入', pl_done: '已导入 {0} 个码到 {1}',
    pl_refused: '文件有误，未导入任何码（共 {0} 处问题）：', pl_line: '行', pl_reason: '问题', pl_none: '没有码池', pl_warn: 'L{0} 码池 {1}：剩余 {2}，本批次还需 {3}',
    pl_too_big: '文件过大（上限 24 MiB）', pl_pick: '请选择文件',
  },
  en: {
    pl_title: 'Code pools', pl_pool: 'Pool', pl_product: 'Product', pl_level: 'Level', pl_available: 'Available', pl_allocated: 'Handed out', pl_returned: 'Returned',
    pl_import: 'Import a code file', pl_file: 'Code file (.txt or .zip)', pl_into: 'Into pool', pl_go: 'Import', pl_done: '{0} codes imported into {1}',
    pl_refused: 'The file is refused; nothing was imported ({0} problems):', pl_line: 'Line', pl_reason: 'Problem', pl_none: 'no pools', pl_warn: 'L{0} pool {1}: {2} left, the batch still needs {3}',
    pl_too_big: 'the file is too large (24 MiB at most)', pl_pick: 'choose a file',
  },
});

const maxFile = 24 << 20;

export async function render(root, app) {
  css();
  const { el } = app;
  const t = app.t.bind(app);
  const n = (x) => (x ?? 0).toLocaleString(app.lang === 'en' ? 'en' : 'zh-CN');
  const table = el('table', { class: 'tbl', id: 'pl-table' });
  const warns = el('div', { id: 'pl-warn' });
  const into = el('select', { id: 'pl-into' });
  const file = el('input', { type: 'file', id: 'pl-file', accept: '.txt,.zip,text/plain,application/zip' });
  const result = el('div', { id: 'pl-result' });
  const load = async () => {
    let d;
    try { d = await app.api('GET', '/pools'); } catch (e) { app.toast(e.message); return; }
    warns.replaceChildren(...d.warnings.map((w) => el('div', { class: 'warnbox' }, w.warning ? `${t('pl_warn', w.level, w.pool, n(w.available), n(w.needed))}` : '')));
    table.replaceChildren(el('thead', {}, el('tr', {}, ...['pl_pool', 'pl_product', 'pl_level', 'pl_available', 'pl_allocated', 'pl_returned'].map((k) => el('th', {}, t(k))))),
      el('tbody', {}, ...(d.pools.length ? d.pools.map((p) => el('tr', { 'data-pool': p.pool }, el('td', { class: 'code' }, p.pool), el('td', {}, p.product || '—'),
        el('td', {}, p.level ? 'L' + p.level : '—'), el('td', {}, el('b', {}, n(p.available))), el('td', {}, n(p.allocated)), el('td', {}, n(p.returned))))
        : [el('tr', {}, el('td', { colspan: '6' }, t('pl_none')))])));
    const cur = into.value;
    into.replaceChildren(...d.pools.filter((p) => p.product).map((p) => el('option', { value: p.pool }, `${p.pool} · ${p.product} L${p.level}`)));
    if (cur) into.value = cur;
  };
  // b64 encodes bytes for the JSON body, in chunks (no stack overflow on MBs).
  const b64 = (buf) => {
    const u = new Uint8Array(buf);
    let s = '';
    for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000));
    return btoa(s);
  };
  const upload = async () => {
    const f = file.files[0];
    if (!f) { app.toast(t('pl_pick')); return; }
    if (f.size > maxFile) { app.toast(t('pl_too_big')); return; }
    const data = b64(await f.arrayBuffer());
    // Own fetch: a refusal's body carries the bad lines, which app.api drops.
    const res = await fetch('/api/v1/pools/' + encodeURIComponent(into.value) + '/import', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': app.session.csrf, 'Accept-Language': app.lang },
      body: JSON.stringify({ name: f.name, data }),
    }).catch(() => null);
    const d = res ? await res.json().catch(() => ({})) : { message: t('error_network') };
    if (res?.ok) {
      result.replaceChildren(el('div', { class: 'okbox' }, t('pl_done', n(d.imported.codes), d.imported.pool)));
      load();
      return;
    }
    if (d.bad_lines) {
      result.replaceChildren(el('div', { class: 'badbox' }, t('pl_refused', d.total_problems)),
        el('table', { class: 'tbl small', id: 'pl-bad' }, el('thead', {}, el('tr', {}, el('th', {}, t('pl_line')), el('th', {}, t('pl_reason')))),
          el('tbody', {}, ...d.bad_lines.map((b) => el('tr', { class: 'rej' }, el('td', {}, (b.file ? b.file + ':' : '') + b.line), el('td', { class: 'code' }, b.reason))))));
      return;
    }
    result.replaceChildren(el('div', { class: 'badbox' }, d.message || String(res?.status)));
  };
  root.append(el('div', { class: 'ops' },
    el('section', { class: 'card' }, el('h1', {}, t('pl_title')), warns, table),
    el('section', { class: 'card' }, el('h2', {}, t('pl_import')),
      el('label', { class: 'fld' }, el('span', {}, t('pl_into')), into), el('label', { class: 'fld' }, el('span', {}, t('pl_file')), file),
      el('div', { class: 'acts' }, el('button', { class: 'btn primary', type: 'button', id: 'pl-go', onclick: upload }, t('pl_go'))), result)));
  await load();
}
