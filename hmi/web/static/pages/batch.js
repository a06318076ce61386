// Start a batch from a work order, checked on the spot (every problem next
// to its field); the batch on the line and its challenge test.
import { strings as ops, merge, css, live, field } from './ops.js';
import { strings as ov } from './overview.js';

export const strings = merge(ops, ov, {
  zh: {
    wo_title: '按工单开始批次', wo_product: '产品', wo_batch: '批号', wo_prod_date: '生产日期', wo_expiry: '有效期至', wo_planned: '计划数量（最小包装）',
    wo_levels: '关联级别', wo_levels_all: '全部级别', wo_levels_n: '到第 {0} 级（{1}）', wo_check: '检查工单', wo_start: '开始批次', wo_ok: '工单无误，可以开始',
    wo_started: '批次 {0} 已创建：请在产线总览中复位、启动', wo_now: '当前批次', wo_ready: '产线就绪：可以开始下一批次', wo_open: '批次 {0} 尚未完成：完成后才能开始新批次',
    wo_started_by: '开批人', wo_state: '状态', wo_to_overview: '去产线总览',
    e_required: '必填', e_unknown: '主数据中没有这个产品', e_format: '格式不对', e_range: '超出范围', e_used: '此批号已在本账本中使用过',
    e_expiry_before_production: '有效期必须晚于生产日期', e_codes_short: '码池 {0} 缺少 {1} 个码（请先导入码段）',
    ch_title: '挑战测试', ch_step: '步骤', ch_expect: '应得', ch_got: '实得', ch_result: '结果', ch_pass: '通过', ch_fail: '失败', ch_wait: '等待',
    ch_passed: '挑战测试通过', ch_failed: '挑战测试失败：产线已保持', ch_repeat: '重新测试', ch_none: '本批次没有挑战测试', ch_running: '进行中：按顺序放入测试样品',
  },
  en: {
    wo_title: 'Start a batch from a work order', wo_product: 'Product', wo_batch: 'Batch number', wo_prod_date: 'Production date', wo_expiry: 'Expiry', wo_planned: 'Planned (units)',
    wo_levels: 'Levels aggregated', wo_levels_all: 'all levels', wo_levels_n: 'up to level {0} ({1})', wo_check: 'Check', wo_start: 'Start batch', wo_ok: 'The work order is fine: ready to start',
    wo_started: 'Batch {0} created: reset and start it on the line overview', wo_now: 'Batch on the line', wo_ready: 'The line is ready for the next batch', wo_open: 'Batch {0} is not complete: complete it before starting another',
    wo_started_by: 'Started by', wo_state: 'State', wo_to_overview: 'Line overview',
    e_required: 'required', e_unknown: 'not in the master data', e_format: 'wrong format', e_range: 'out of range', e_used: 'this batch number was used before on this ledger',
    e_expiry_before_production: 'expiry must be after the production date', e_codes_short: 'pool {0} lacks {1} codes (import a code file first)',
    ch_title: 'Challenge test', ch_step: 'Step', ch_expect: 'Expected', ch_got: 'Got', ch_result: 'Result', ch_pass: 'pass', ch_fail: 'fail', ch_wait: 'waiting',
    ch_passed: 'Challenge test passed', ch_failed: 'Challenge test failed: the line is held', ch_repeat: 'Repeat the test', ch_none: 'This batch has no challenge test', ch_running: 'Running: put the test units through in order',
  },
});

export async function render(root, app) {
  css();
  const { el } = app;
  const t = app.t.bind(app);
  const today = new Date().toISOString().slice(0, 10);
  const inYears = (n) => { const d = new Date(); d.setFullYear(d.getFullYear() + n); d.setDate(d.getDate() - 1); return d.toISOString().slice(0, 10); };
  const f = {
    product: field(el, t('wo_product'), el('select', { name: 'product' })),
    batch: field(el, t('wo_batch'), el('input', { name: 'batch', autocomplete: 'off' })),
    production_date: field(el, t('wo_prod_date'), el('input', { name: 'production_date', type: 'date', value: today })),
    expiry: field(el, t('wo_expiry'), el('input', { name: 'expiry', type: 'date', value: inYears(2) })),
    planned: field(el, t('wo_planned'), el('input', { name: 'planned', type: 'number', min: '1', inputmode: 'numeric', value: '1000' })),
    levels: field(el, t('wo_levels'), el('select', { name: 'levels' })),
  };
  let products = [];
  try { products = await app.api('GET', '/workorders/products'); } catch (e) { app.toast(e.message); }
  f.product.input.replaceChildren(...products.map((p) => el('option', { value: p.key }, `${p.name}${p.strength ? ' ' + p.strength : ''} · ${p.key}`)));
  const levelOptions = () => {
    const p = products.find((x) => x.key === f.product.input.value);
    f.levels.input.replaceChildren(el('option', { value: '0' }, t('wo_levels_all')),
      ...(p?.levels || []).map((l) => el('option', { value: String(l.level) }, t('wo_levels_n', l.level, l.name || 'L' + l.level))));
  };
  levelOptions();
  const summary = el('div', { id: 'wo-summary' });
  const order = () => ({
    product: f.product.input.value, batch: f.batch.input.value.trim(), production_date: f.production_date.input.value,
    expiry: f.expiry.input.value, planned: Number(f.planned.input.value) || 0, levels: Number(f.levels.input.value) || 0,
  });
  const show = (problems) => {
    for (const [k, v] of Object.entries(f)) { v.err.textContent = ''; v.box.classList.remove('bad'); }
    for (const p of problems) {
      const fl = f[p.field] || f.planned;
      const k = 'e_' + p.code;
      const words = p.code === 'codes_short' ? t(k, p.pool, p.missing.toLocaleString()) : (t(k) === k ? p.message : t(k));
      fl.err.textContent = fl.err.textContent ? fl.err.textContent + '；' + words : words;
      fl.box.classList.add('bad');
      fl.box.dataset.code = p.code;
    }
    summary.replaceChildren(problems.length ? '' : el('div', { class: 'okbox' }, t('wo_ok')));
    return problems.length === 0;
  };
  const check = async () => {
    try { return show((await app.api('POST', '/workorders/check', order())).problems); } catch (e) { app.toast(e.message); return false; }
  };
  let timer = null;
  const soon = () => { clearTimeout(timer); timer = setTimeout(check, 300); };
  for (const v of Object.values(f)) { v.input.addEventListener('input', soon); v.input.addEventListener('change', soon); }
  f.product.input.addEventListener('change', levelOptions);
  const start = async () => {
    if (!(await check())) return;
    try {
      const r = await app.api('POST', '/workorders', order());
      app.toast(t('wo_started', r.batch), 'info');
      app.go('overview');
    } catch (e) {
      app.toast(e.message);
      check();
    }
  };

  const now = el('div', { id: 'wo-now' });
  const chal = el('div', { id: 'challenge' });
  root.append(el('div', { class: 'ops' },
    el('section', { class: 'card' }, el('h1', {}, t('wo_title')),
      el('div', { class: 'form' }, f.product.box, f.batch.box, f.production_date.box, f.expiry.box, f.planned.box, f.levels.box),
      summary,
      el('div', { class: 'acts' }, el('button', { class: 'btn', type: 'button', id: 'wo-check', onclick: check }, t('wo_check')),
        el('button', { class: 'btn primary', type: 'button', id: 'wo-start', onclick: start }, t('wo_start')))),
    el('div', {}, el('section', { class: 'card' }, el('h2', {}, t('wo_now')), now),
      el('section', { class: 'card' }, el('h2', {}, t('ch_title')), chal))));

  const reason = (r) => { const k = 'r_' + r; const s = t(k); return s === k ? r : s; };
  const draw = (o) => {
    const lo = o.line_overview;
    if (!lo) { now.textContent = t('op_live_wait'); return; }
    const b = lo.batch;
    const dl = b ? el('dl', { class: 'kv' }, el('dt', {}, t('wo_batch')), el('dd', {}, b.id), el('dt', {}, t('wo_product')), el('dd', {}, b.product),
      el('dt', {}, t('wo_planned')), el('dd', {}, (b.order?.planned_qty ?? 0).toLocaleString()), el('dt', {}, t('wo_started_by')), el('dd', {}, b.started_by || '—'),
      el('dt', {}, t('wo_state')), el('dd', {}, t('s_' + lo.state))) : null;
    now.replaceChildren(lo.ready_for_batch ? el('div', { class: 'okbox', id: 'wo-ready' }, t('wo_ready')) : el('div', { class: 'warnbox' }, t('wo_open', b?.id || '')), dl || '',
      el('div', { class: 'acts' }, el('button', { class: 'btn', type: 'button', onclick: () => app.go('overview') }, t('wo_to_overview'))));
    document.getElementById('wo-start').disabled = !lo.ready_for_batch;
    const c = lo.challenge;
    if (!c || !c.steps.length) { chal.replaceChildren(el('div', { class: 'sub' }, t('ch_none'))); return; }
    const rows = c.steps.map((s, i) => {
      const r = (c.results || [])[i];
      return el('tr', {}, el('td', {}, `${i + 1}. ${s.name}`), el('td', {}, reason(s.expect)), el('td', {}, r ? `${reason(r.got)} (#${r.item})` : '—'),
        el('td', { class: r ? (r.ok ? 'pass' : 'fail') : 'sub' }, r ? (r.ok ? t('ch_pass') : t('ch_fail')) : t('ch_wait')));
    });
    const failed = (c.results || []).some((r) => !r.ok);
    chal.replaceChildren(
      el('div', { class: c.passed ? 'okbox' : failed ? 'badbox' : 'warnbox', id: 'ch-status' }, c.passed ? t('ch_passed') : failed ? t('ch_failed') : t('ch_running')),
      el('table', { class: 'tbl small' }, el('thead', {}, el('tr', {}, ...['ch_step', 'ch_expect', 'ch_got', 'ch_result'].map((k) => el('th', {}, t(k))))), el('tbody', {}, ...rows)),
      failed && lo.state === 'Held' && app.session.user.roles.includes('operator') ? el('div', { class: 'acts' }, el('button', { class: 'btn primary', type: 'button', id: 'ch-repeat', onclick: async () => {
        try { await app.api('POST', '/line/commands', { command: 'unhold' }); } catch (e) { app.toast(e.message); }
      } }, t('ch_repeat'))) : '');
  };
  return live(app, draw);
}
