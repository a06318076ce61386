// Rework: decommission, replace, unpack, sample — a reason from the list
// plus free text; the preview says what will change before it is confirmed.
import { strings as ops, merge, css, field } from './ops.js';

export const strings = merge(ops, {
  zh: {
    rw_title: '返工', k_decommission: '停用', k_replace: '替换', k_unpack: '拆包', k_sample: '抽样',
    rw_code_unit: '产品追溯码', rw_code_parent: '包装码', rw_old: '取出的子码', rw_new: '放入的子码（未装箱）',
    rw_reason: '原因', rw_note: '说明', rw_preview: '预览变更', rw_do: '确认执行', rw_changes: '将发生的变更', rw_from: '现状态', rw_to: '变更后', rw_in: '所在包装',
    rw_labels: '将打印 {0} 张标签', rw_refusal: '不能执行：{0}', rw_done: '已执行：{0}', rw_confirm: '确认执行「{0}」？变更将写入账本，并记录操作人与原因。',
    rw_need_preview: '请先预览', rw_r_damaged: '产品损坏', rw_r_label: '标签或码不可读', rw_r_qa: '质量抽样', rw_r_wrong: '装错', rw_r_other: '其他',
    cs_commissioned: '已激活', cs_decommissioned: '已停用', cs_sampled: '已抽样', cs_packed: '已装箱', cs_loose: '未装箱', cs_voided: '已作废',
  },
  en: {
    rw_title: 'Rework', k_decommission: 'Decommission', k_replace: 'Replace', k_unpack: 'Unpack', k_sample: 'Sample',
    rw_code_unit: 'Unit code', rw_code_parent: 'Parent code', rw_old: 'Child taken out', rw_new: 'Loose unit put in',
    rw_reason: 'Reason', rw_note: 'Note', rw_preview: 'Preview', rw_do: 'Carry it out', rw_changes: 'What will change', rw_from: 'Now', rw_to: 'After', rw_in: 'Parent',
    rw_labels: '{0} label(s) will be printed', rw_refusal: 'cannot be done: {0}', rw_done: 'done: {0}', rw_confirm: 'Carry out "{0}"? The change goes to the ledger with you as the operator and the reason.',
    rw_need_preview: 'preview it first', rw_r_damaged: 'damaged', rw_r_label: 'label or code unreadable', rw_r_qa: 'QA sample', rw_r_wrong: 'packed wrongly', rw_r_other: 'other',
    cs_commissioned: 'commissioned', cs_decommissioned: 'decommissioned', cs_sampled: 'sampled', cs_packed: 'packed', cs_loose: 'loose', cs_voided: 'voided',
  },
});

const kinds = ['decommission', 'replace', 'unpack', 'sample'];
const reasons = { decommission: ['damaged', 'label', 'other'], replace: ['damaged', 'label', 'wrong', 'other'], unpack: ['damaged', 'wrong', 'label', 'other'], sample: ['qa', 'other'] };

export async function render(root, app) {
  css();
  const { el } = app;
  const t = app.t.bind(app);
  let kind = 'decommission';
  let previewed = null; // the request the preview shown is for
  const code = field(el, t('rw_code_unit'), el('input', { id: 'rw-code', class: 'code', autocomplete: 'off' }));
  const old = field(el, t('rw_old'), el('input', { id: 'rw-old', class: 'code', autocomplete: 'off' }));
  const neu = field(el, t('rw_new'), el('input', { id: 'rw-new', class: 'code', autocomplete: 'off' }));
  const reason = field(el, t('rw_reason'), el('select', { id: 'rw-reason' }));
  const note = field(el, t('rw_note'), el('input', { id: 'rw-note', autocomplete: 'off' }));
  const out = el('div', { id: 'rw-preview' });
  const doBtn = el('button', { class: 'btn danger primary', type: 'button', id: 'rw-do', disabled: true, onclick: () => carryOut() }, t('rw_do'));
  const kindBox = el('div', { class: 'kinds' });
  const words = (s) => { const k = 'cs_' + s; const w = t(k); return w === k ? s : w; };
  const req = () => {
    const r = { kind, code: code.input.value.trim(), reason: reason.input.value + (note.input.value.trim() ? ': ' + note.input.value.trim() : '') };
    if (kind === 'replace') { r.old = old.input.value.trim(); r.new = neu.input.value.trim(); }
    return r;
  };
  const stale = () => { previewed = null; doBtn.disabled = true; out.replaceChildren(); };
  const setKind = (k) => {
    kind = k;
    for (const b of kindBox.children) b.classList.toggle('on', b.dataset.kind === k);
    code.box.querySelector('span').textContent = t(k === 'decommission' || k === 'sample' ? 'rw_code_unit' : 'rw_code_parent');
    old.box.hidden = neu.box.hidden = k !== 'replace';
    reason.input.replaceChildren(...reasons[k].map((r) => el('option', { value: r === 'qa' ? 'qa-sample' : r === 'label' ? 'unreadable-label' : r === 'wrong' ? 'packed-wrongly' : r }, t('rw_r_' + r))));
    stale();
  };
  kindBox.append(...kinds.map((k) => el('button', { class: 'btn', type: 'button', 'data-kind': k, onclick: () => setKind(k) }, t('k_' + k))));
  for (const f of [code, old, neu, reason, note]) f.input.addEventListener('input', stale);
  const preview = async () => {
    const r = req();
    try {
      const p = await app.api('POST', '/line/rework/preview', r);
      if (p.refusal) {
        out.replaceChildren(el('div', { class: 'badbox', id: 'rw-refusal' }, t('rw_refusal', p.refusal)));
        doBtn.disabled = true;
        return;
      }
      out.replaceChildren(el('table', { class: 'tbl small' }, el('thead', {}, el('tr', {}, ...['ov_code', 'rw_from', 'rw_to', 'rw_in'].map((k) => el('th', {}, k === 'ov_code' ? t('rw_code_unit') : t(k))))),
          el('tbody', {}, ...p.changes.map((c) => el('tr', {}, el('td', { class: 'code' }, c.code), el('td', {}, words(c.from)), el('td', {}, el('b', {}, words(c.to))), el('td', { class: 'code' }, c.parent || '—'))))),
        p.labels ? el('p', {}, t('rw_labels', p.labels)) : '');
      previewed = JSON.stringify(r);
      doBtn.disabled = false;
    } catch (e) {
      out.replaceChildren(el('div', { class: 'badbox' }, e.message));
      doBtn.disabled = true;
    }
  };
  const carryOut = async () => {
    const r = req();
    if (previewed !== JSON.stringify(r)) { app.toast(t('rw_need_preview')); return; }
    if (!(await app.confirm(t('k_' + kind), t('rw_confirm', t('k_' + kind)), t('rw_do')))) return;
    try {
      await app.api('POST', '/line/rework', r);
      app.toast(t('rw_done', t('k_' + kind)), 'info');
      out.replaceChildren(el('div', { class: 'okbox', id: 'rw-ok' }, t('rw_done', t('k_' + kind))));
      previewed = null;
      doBtn.disabled = true;
    } catch (e) { app.toast(e.message); }
  };
  root.append(el('div', { class: 'ops' },
    el('section', { class: 'card' }, el('h1', {}, t('rw_title')), kindBox,
      el('div', { class: 'form' }, el('div', { class: 'full' }, code.box), old.box, neu.box, reason.box, note.box),
      el('div', { class: 'acts' }, el('button', { class: 'btn primary', type: 'button', id: 'rw-preview-btn', onclick: preview }, t('rw_preview')), doBtn)),
    el('section', { class: 'card' }, el('h2', {}, t('rw_changes')), out)));
  setKind('decommission');
}
