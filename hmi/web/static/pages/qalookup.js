// Code lookup — the recall question: scan (keyboard-wedge scanner) or type
// any code → product, batch, state and full history, the parent chain to
// the pallet, the tree under it, everything else on the same pallet, and
// where its batch's documents went in the network and what was answered.
import { when, stateBadge, strings as qaStrings } from './qa.js';

export const strings = {
  zh: {
    ...qaStrings.zh,
    lk_title: '查码追溯', lk_scan: '扫描或输入追溯码', lk_go: '查询', lk_code: '追溯码', lk_state: '码状态', lk_level: '层级', lk_batch: '批次',
    lk_batch_state: '批次状态', lk_chain: '上级链（至托盘）', lk_top: '最外层', lk_children: '下级（{0}）', lk_same: '同一托盘上的全部（{0}）', lk_history: '完整历史',
    lk_network: '追溯网络：交付文件去向与应答', lk_none: '无', lk_truncated: '列表过长，仅显示部分', lk_pool: '码池', lk_partial: '零箱', lk_mixed: '拼箱',
    lk_kind: '事件', lk_actor: '执行者', lk_reason: '原因/内容', lk_itself: '（本码）',
    cs_allocated: '已分配', cs_sent: '已下发打印', cs_printed: '已打印', cs_commissioned: '已赋码（散码）', cs_aggregated: '已关联', cs_rejected: '已剔除',
    cs_voided: '已作废', cs_sampled: '已抽样', cs_decommissioned: '已注销', cs_in_pool: '码池中', cs_returned: '已退回码池',
  },
  en: {
    ...qaStrings.en,
    lk_title: 'Code lookup', lk_scan: 'Scan or type a code', lk_go: 'Look up', lk_code: 'Code', lk_state: 'Code state', lk_level: 'Level', lk_batch: 'Batch',
    lk_batch_state: 'Batch state', lk_chain: 'Parents up to the pallet', lk_top: 'Outermost', lk_children: 'Under it ({0})', lk_same: 'Everything on the same pallet ({0})', lk_history: 'Full history',
    lk_network: 'Network: where the documents went and what was answered', lk_none: 'none', lk_truncated: 'list too long, partly shown', lk_pool: 'Pool', lk_partial: 'partial', lk_mixed: 'mixed',
    lk_kind: 'Event', lk_actor: 'Actor', lk_reason: 'Reason / detail', lk_itself: '(this code)',
    cs_allocated: 'allocated', cs_sent: 'sent to the printer', cs_printed: 'printed', cs_commissioned: 'commissioned (loose)', cs_aggregated: 'packed', cs_rejected: 'rejected',
    cs_voided: 'voided', cs_sampled: 'sampled', cs_decommissioned: 'decommissioned', cs_in_pool: 'in the pool', cs_returned: 'returned to the pool',
  },
};

const maxRows = 400;

export async function render(root, app, arg) {
  const { el } = app;
  const t = app.t.bind(app);
  const canBatch = app.session.user.roles.some((r) => ['qa', 'admin', 'inspector'].includes(r));
  const input = el('input', { id: 'lk-code', class: 'scan', autocomplete: 'off', autofocus: true, placeholder: t('lk_scan') });
  const out = el('div', { id: 'lk-out' });
  const form = el('form', { class: 'row' }, input, el('button', { class: 'btn primary', type: 'submit', id: 'lk-go' }, t('lk_go')));
  root.append(el('section', { class: 'card' }, el('h1', {}, t('lk_title')), form), out);

  const codeLink = (c, self) => el('a', { class: 'code' + (c === self ? ' self' : ''), href: '#/qalookup/' + encodeURIComponent(c) }, c);
  const tree = (nodes, self) => {
    const shown = nodes.slice(0, maxRows);
    return el('ul', { class: 'tree' }, ...shown.map((n) => el('li', { class: 'd' + Math.min(n.depth, 6) + (n.code === self ? ' self' : '') },
      `L${n.level} `, codeLink(n.code, self), n.code === self ? ' ' + t('lk_itself') : '')), nodes.length > maxRows ? el('li', { class: 'hint' }, `… ${nodes.length - maxRows}`) : null);
  };

  async function look(scan) {
    out.replaceChildren();
    let d;
    try { d = await app.api('GET', '/qa/lookup?code=' + encodeURIComponent(scan)); } catch (e) { app.toast(e.message); out.append(el('p', { class: 'msg', id: 'lk-msg' }, e.message)); return; }
    const v = d.view; const c = v.code;
    const png = '/api/v1/codes/' + encodeURIComponent(c.code) + '/barcode.png';
    const kv = [['lk_code', el('span', { class: 'code big', id: 'lk-canon' }, c.code)], ['lk_state', el('b', { id: 'lk-state' }, t('cs_' + c.state))], ['lk_level', 'L' + c.level + (c.partial ? ' · ' + t('lk_partial') : '') + (c.mixed ? ' · ' + t('lk_mixed') : '')],
      ['qa_product', d.product || ''], ['qa_lot', d.batch_number || ''],
      ['lk_batch', c.batch ? (canBatch ? el('a', { href: '#/qa/' + encodeURIComponent(c.batch), id: 'lk-batch' }, c.batch) : el('span', { id: 'lk-batch' }, c.batch)) : ''],
      ['lk_batch_state', c.batch_state ? stateBadge(app, c.batch_state) : ''], ['lk_pool', c.pool || '']];
    const chain = [c.code, ...v.ancestors];
    out.append(el('div', { class: 'qa-top' },
      el('section', { class: 'card', id: 'lk-summary' }, el('dl', { class: 'kv' }, ...kv.filter(([, x]) => x !== '').flatMap(([k, x]) => [el('dt', {}, t(k)), el('dd', {}, x)])),
        el('h2', {}, t('lk_chain')), el('ol', { class: 'chain-list', id: 'lk-chain' }, ...chain.map((x, i) => el('li', {}, codeLink(x, c.code), i === chain.length - 1 && i > 0 ? ' · ' + t('lk_top') : '')))),
      el('section', { class: 'card center' }, el('img', { src: png, alt: c.code, class: 'barcode', id: 'lk-png' }))),
    el('section', { class: 'card', id: 'lk-net' }, el('h2', {}, t('lk_network')),
      d.recall ? table(d.recall.documents.map((x) => el('tr', { 'data-state': x.state }, el('td', {}, el('b', {}, x.format), el('div', { class: 'sub code' }, x.id)),
        el('td', {}, el('span', { class: 'badge d-' + x.state }, t('ds_' + x.state))),
        el('td', {}, ...x.deliveries.map((dl) => el('div', { class: 'dl' }, el('b', {}, dl.endpoint), ` → ${dl.url}: `, t('ds_' + dl.state),
          dl.error ? el('div', { class: 'msg' }, dl.error) : null, dl.answer ? el('div', { class: 'sub' }, dl.answer) : null))))), ['doc_format', 'doc_state', 'doc_to'])
        : el('p', { class: 'hint' }, d.recall_error || t('lk_none'))),
    el('div', { class: 'qa-two' },
      el('section', { class: 'card', id: 'lk-children' }, el('h2', {}, t('lk_children', v.children.length)), v.children.length ? tree(v.children, c.code) : el('p', { class: 'hint' }, t('lk_none'))),
      el('section', { class: 'card', id: 'lk-same' }, el('h2', {}, t('lk_same', v.same_top.length)), v.same_top.length ? tree(v.same_top, c.code) : el('p', { class: 'hint' }, t('lk_none')),
        v.truncated ? el('p', { class: 'hint' }, t('lk_truncated')) : null)),
    el('section', { class: 'card', id: 'lk-history' }, el('h2', {}, t('lk_history')),
      table(c.history.map((e) => el('tr', {}, el('td', {}, e.seq), el('td', {}, when(app, e.at)), el('td', {}, `${e.actor.kind}:${e.actor.id}`), el('td', {}, e.kind),
        el('td', {}, e.reason || e.pool || e.parent || e.document || ''))), ['#', 'rec_when', 'lk_actor', 'lk_kind', 'lk_reason'])));
  }

  function table(rows, heads) {
    if (!rows.length) return el('p', { class: 'hint' }, t('lk_none'));
    return el('table', { class: 'tbl small' }, el('thead', {}, el('tr', {}, ...heads.map((h) => el('th', {}, t(h))))), el('tbody', {}, ...rows));
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const s = input.value.trim();
    if (!s) return;
    if (location.hash !== '#/qalookup/' + encodeURIComponent(s)) app.go('qalookup', encodeURIComponent(s));
    else look(s);
  });
  if (arg) { input.value = decodeURIComponent(arg); await look(input.value); }
  input.focus();
}
