// QA: the batch list (#/qa) and a batch's record (#/qa/<batch>) — the
// reconciliation as conservation equations, rejects, challenge tests,
// alarms, manual actions, the audit trail with the hash chain's status; the
// release rules, the electronic signature, activation and the hand-off; the
// hand-off documents' status, attempts and resend. Inspectors read only.
export const strings = {
  zh: {
    qa_title: '批次', qa_product: '产品', qa_state: '状态', qa_any: '全部', qa_from: '生产日期从', qa_to: '到', qa_filter: '筛选',
    qa_batch: '批次', qa_lot: '批号', qa_made: '生产日期', qa_expiry: '有效期至', qa_line: '产线', qa_none: '没有符合条件的批次',
    st_open: '生产中', st_complete: '已完成待审核', st_released: '已放行', st_qa_rejected: '不放行（隔离）', st_active: '已激活', st_handed_off: '已交付',
    rec_back: '← 批次列表', rec_html: '打印版 HTML', rec_pdf: '下载 PDF', rec_header: '批记录', rec_workshop: '车间', rec_manager: '负责人',
    rec_levels: '包装层级', rec_started: '开始', rec_completed: '完成', rec_hash: '批记录 SHA-256', rec_planned: '计划数量',
    rec_release: '放行', rec_rules: '放行条件', rule_complete: '批次已完成', rule_reconciled: '物料平衡：各级守恒，无散码，无不确定码',
    rule_challenge: '挑战测试通过', rule_alarms: '所有报警已确认', rule_verify: '账本校验通过', rec_more: '另有 {0} 项',
    rec_verify: '运行账本校验', rec_verified: '账本校验完成', rec_sigs: '电子签名', rec_sigs_need: '需要 {0} 个有效签名', rec_nosig: '尚无签名',
    sig_released: '放行', sig_rejected: '不放行', sig_valid: '有效', sig_void: '作废', sig_final: '已生效', sig_by: '签名人',
    sig_form: '签名', sig_pw: '再次输入密码', sig_meaning: '签名含义', sig_comment: '意见（必填）', sig_sign: '签名', sig_done: '已签名',
    sig_wait: '等待第二位质量人员签名', sig_confirm_rel: '确认放行批次 {0}？签名将记录您的姓名、时间和含义。', sig_confirm_rej: '确认不放行批次 {0}？该批次将被隔离，追溯码永不激活。',
    act_title: '激活与交付', act_pw: '再次输入密码', act_btn: '激活并交付', act_done: '已激活，交付文件已写入发件箱', act_hint: '激活后追溯码生效，并立即向追溯网络交付文件。',
    ho_btn: '交付文件', ho_done: '交付文件已写入发件箱', ho_err: '已激活，但交付文件未能写入：{0}',
    doc_title: '交付文件', doc_none: '尚无交付文件', doc_format: '格式', doc_state: '状态', doc_to: '接收方', doc_attempts: '记录', doc_resend: '重新发送',
    doc_resent: '已重新排队发送', doc_no_outbox: '未配置发件箱', ds_pending: '待发送', ds_sending: '发送中', ds_processing: '处理中', ds_delivered: '已送达', ds_failed: '失败', ds_superseded: '已替换',
    rec_recon: '物料平衡（守恒方程）', rec_rejects: '剔除与处置（按原因）', rec_kind: '类别', rec_reason: '原因', rec_n: '数量', rec_challenge: '挑战测试',
    rec_passed: '通过', rec_failed: '未通过', rec_alarms: '报警与确认', rec_ack: '确认', rec_unack: '未确认', rec_manual: '人工操作', rec_who: '谁', rec_when: '时间',
    rec_what: '操作', rec_why: '原因', rec_trail: '审计追踪', rec_chain: '哈希链', rec_prev: '前一事件哈希', rec_after: '决定之后（不属于签名内容）',
    rec_parents: '父级：满 {0}，零箱 {1}，拼箱 {2}', rec_empty: '无', rec_source: '来源',
  },
  en: {
    qa_title: 'Batches', qa_product: 'Product', qa_state: 'State', qa_any: 'all', qa_from: 'Produced from', qa_to: 'to', qa_filter: 'Filter',
    qa_batch: 'Batch', qa_lot: 'Lot', qa_made: 'Produced', qa_expiry: 'Expiry', qa_line: 'Line', qa_none: 'No batch matches',
    st_open: 'in production', st_complete: 'complete, to review', st_released: 'released', st_qa_rejected: 'rejected (quarantined)', st_active: 'active', st_handed_off: 'handed off',
    rec_back: '← Batches', rec_html: 'Printable HTML', rec_pdf: 'Download PDF', rec_header: 'Batch record', rec_workshop: 'Workshop', rec_manager: 'Manager',
    rec_levels: 'Levels', rec_started: 'Started', rec_completed: 'Completed', rec_hash: 'Record SHA-256', rec_planned: 'Planned',
    rec_release: 'Release', rec_rules: 'Release rules', rule_complete: 'batch complete', rule_reconciled: 'reconciled: conservation per level, nothing loose, no uncertain code',
    rule_challenge: 'challenge test passed', rule_alarms: 'every alarm acknowledged', rule_verify: 'ledger verify passes', rec_more: '{0} more',
    rec_verify: 'Verify the ledger', rec_verified: 'Ledger verified', rec_sigs: 'Electronic signatures', rec_sigs_need: '{0} valid signature(s) needed', rec_nosig: 'No signature yet',
    sig_released: 'released', sig_rejected: 'rejected', sig_valid: 'valid', sig_void: 'VOID', sig_final: 'final', sig_by: 'Signed by',
    sig_form: 'Sign', sig_pw: 'Your password again', sig_meaning: 'Meaning', sig_comment: 'Comment (required)', sig_sign: 'Sign', sig_done: 'Signed',
    sig_wait: 'waiting for a second QA signature', sig_confirm_rel: 'Release batch {0}? The signature records your name, the time and its meaning.', sig_confirm_rej: 'Reject batch {0}? It is quarantined: its codes are never activated.',
    act_title: 'Activation and hand-off', act_pw: 'Your password again', act_btn: 'Activate and hand off', act_done: 'Activated; the hand-off documents are in the outbox', act_hint: 'Activation makes the codes live and hands the documents to the network at once.',
    ho_btn: 'Hand off documents', ho_done: 'The hand-off documents are in the outbox', ho_err: 'Activated, but the documents were not written: {0}',
    doc_title: 'Hand-off documents', doc_none: 'No document yet', doc_format: 'Format', doc_state: 'State', doc_to: 'Receivers', doc_attempts: 'Log', doc_resend: 'Resend',
    doc_resent: 'Queued again', doc_no_outbox: 'no outbox configured', ds_pending: 'pending', ds_sending: 'sending', ds_processing: 'processing', ds_delivered: 'delivered', ds_failed: 'failed', ds_superseded: 'superseded',
    rec_recon: 'Reconciliation (conservation equations)', rec_rejects: 'Rejects and dispositions by reason', rec_kind: 'Kind', rec_reason: 'Reason', rec_n: 'Count', rec_challenge: 'Challenge tests',
    rec_passed: 'passed', rec_failed: 'failed', rec_alarms: 'Alarms and acknowledgements', rec_ack: 'Acknowledged', rec_unack: 'NOT acknowledged', rec_manual: 'Manual actions', rec_who: 'Who', rec_when: 'When',
    rec_what: 'What', rec_why: 'Why', rec_trail: 'Audit trail', rec_chain: 'Hash chain', rec_prev: 'Previous event hash', rec_after: 'After the decision (not part of the record as signed)',
    rec_parents: 'parents: full {0}, partial {1}, mixed {2}', rec_empty: 'none', rec_source: 'Source',
  },
};

// clip keeps a long detail (a journaled document state) to a line or two.
const clip = (s) => (s && s.length > 160 ? s.slice(0, 160) + '…' : s || '');

const states = ['open', 'complete', 'released', 'qa_rejected', 'active', 'handed_off'];

export function when(app, s) {
  if (!s || s.startsWith('0001-')) return '';
  const d = new Date(s);
  return isNaN(d) ? s : d.toLocaleString(app.lang === 'en' ? 'en-GB' : 'zh-CN', { hour12: false });
}

export function stateBadge(app, st) {
  return app.el('span', { class: 'badge b-' + st, 'data-state': st }, app.t('st_' + st));
}

export async function render(root, app, arg) {
  if (arg) return record(root, app, decodeURIComponent(arg));
  return list(root, app);
}

async function list(root, app) {
  const { el } = app;
  const t = app.t.bind(app);
  const f = {
    product: el('input', { id: 'qa-product', placeholder: t('qa_product') }),
    state: el('select', { id: 'qa-state' }, el('option', { value: '' }, t('qa_any')), ...states.map((s) => el('option', { value: s }, t('st_' + s)))),
    from: el('input', { id: 'qa-from', type: 'date' }), to: el('input', { id: 'qa-to', type: 'date' }),
  };
  const body = el('tbody');
  async function load() {
    const q = new URLSearchParams();
    for (const k of ['product', 'state', 'from', 'to']) if (f[k].value) q.set(k, f[k].value.trim());
    try {
      const bs = await app.api('GET', '/qa/batches?' + q);
      body.replaceChildren(...(bs.length ? bs.map((b) => el('tr', { class: 'click', 'data-batch': b.batch, onclick: () => app.go('qa', encodeURIComponent(b.batch)) },
        el('td', { class: 'code' }, b.batch), el('td', {}, b.product), el('td', {}, b.order?.batch_number || ''), el('td', {}, b.order?.production_date || ''),
        el('td', {}, b.order?.expiry || ''), el('td', {}, b.line), el('td', {}, stateBadge(app, b.state)))) : [el('tr', {}, el('td', { colspan: 7, class: 'hint' }, t('qa_none')))]));
    } catch (e) { app.toast(e.message); }
  }
  const form = el('form', { class: 'row wrap' }, f.product, f.state, el('label', { class: 'row' }, t('qa_from'), f.from), el('label', { class: 'row' }, t('qa_to'), f.to),
    el('button', { class: 'btn primary', type: 'submit', id: 'qa-filter' }, t('qa_filter')));
  form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  root.append(el('section', { class: 'card' }, el('h1', {}, t('qa_title')), form,
    el('table', { class: 'tbl qa-list' }, el('thead', {}, el('tr', {}, ...['qa_batch', 'qa_product', 'qa_lot', 'qa_made', 'qa_expiry', 'qa_line', 'qa_state'].map((k) => el('th', {}, t(k))))), body)));
  await load();
}

function table(app, heads, rows, cls = 'tbl small') {
  const { el } = app;
  if (!rows.length) return el('p', { class: 'hint' }, app.t('rec_empty'));
  return el('table', { class: cls }, el('thead', {}, el('tr', {}, ...heads.map((h) => el('th', {}, app.t(h))))), el('tbody', {}, ...rows));
}

async function record(root, app, batch) {
  const { el } = app;
  const t = app.t.bind(app);
  const roles = app.session.user.roles;
  const isQA = roles.includes('qa');
  const canResend = isQA || roles.includes('admin');
  const base = '/qa/batches/' + encodeURIComponent(batch);
  let doc;
  try { doc = await app.api('GET', base); } catch (e) { app.toast(e.message); root.append(el('a', { class: 'btn', href: '#/qa' }, t('rec_back'))); return; }

  function draw(d) {
    doc = d;
    const r = d.record; const h = r.header;
    const head = el('section', { class: 'card', id: 'rec-header' },
      el('div', { class: 'row' }, el('a', { class: 'btn', href: '#/qa' }, t('rec_back')), el('span', { class: 'spacer' }),
        el('a', { class: 'btn', href: '/api/v1' + base + '/record.html', target: '_blank', rel: 'noopener', id: 'rec-html' }, t('rec_html')),
        el('a', { class: 'btn', href: '/api/v1' + base + '/record.pdf', download: '', id: 'rec-pdf' }, t('rec_pdf'))),
      el('h1', {}, t('rec_header'), ' ', el('span', { class: 'code big' }, h.batch), ' ', stateBadge(app, r.state)),
      el('dl', { class: 'kv' }, ...[['qa_product', h.product], ['qa_lot', h.batch_number], ['qa_line', h.line], ['rec_workshop', h.workshop], ['rec_manager', h.manager],
        ['qa_made', h.production_date], ['qa_expiry', h.expiry], ['rec_planned', h.planned_qty], ['rec_levels', h.levels],
        ['rec_started', `${h.started_by} · ${when(app, h.started_at)}`], ['rec_completed', h.completed_by ? `${h.completed_by} · ${when(app, h.completed_at)}` : '']]
        .filter(([, v]) => v !== undefined && v !== '').flatMap(([k, v]) => [el('dt', {}, t(k)), el('dd', {}, String(v))])),
      el('div', { class: 'hint code' }, t('rec_hash'), ': ', r.hash));
    docsCard = documentsCard(d);
    root.replaceChildren(el('div', { class: 'qa-top' }, head, releaseCard(r)), docsCard, reconCard(r), detailsCard(r));
  }
  let docsCard;

  function releaseCard(r) {
    const rules = el('ul', { class: 'rules', id: 'rules' }, ...r.rules.map((x) => el('li', { class: 'rule ' + x.status, 'data-rule': x.id },
      el('span', { class: 'mark' }, x.status === 'ok' ? '✓' : '✗'), el('div', {}, el('b', {}, t('rule_' + x.id)), el('div', { class: 'sub' }, x.detail || ''),
        x.items?.length ? el('ul', { class: 'items' }, ...x.items.map((i) => el('li', { class: 'code' }, i)), x.more ? el('li', {}, t('rec_more', x.more)) : null) : null))));
    const verify = el('button', { class: 'btn', type: 'button', id: 'rec-verify', hidden: !isQA || r.rules.find((x) => x.id === 'verify')?.status === 'ok' || !['open', 'complete'].includes(r.state) }, t('rec_verify'));
    verify.addEventListener('click', async () => {
      verify.disabled = true;
      try { await app.api('POST', '/qa/verify'); app.toast(t('rec_verified'), 'info'); draw(await app.api('GET', base)); } catch (e) { app.toast(e.message); verify.disabled = false; }
    });
    const sigs = r.signatures.length ? el('ul', { class: 'sigs', id: 'sigs' }, ...r.signatures.map((s) => el('li', { class: 'sig ' + s.state, 'data-state': s.state },
      el('div', {}, el('b', {}, s.full_name), ` (${s.user}) · ${when(app, s.at)} · `, el('b', { class: 'meaning ' + s.meaning }, t('sig_' + s.meaning)), ' · ', el('span', { class: 'sigstate' }, t('sig_' + s.state))),
      el('div', { class: 'sub' }, '“', s.comment, '”'), s.why ? el('div', { class: 'void-why' }, s.why) : null)))
      : el('p', { class: 'hint', id: 'sigs' }, t('rec_nosig'));
    const card = el('section', { class: 'card', id: 'rec-release' }, el('h2', {}, t('rec_rules')), rules, verify,
      el('h2', {}, t('rec_sigs'), ' ', el('span', { class: 'sub' }, t('rec_sigs_need', r.required_signatures))), sigs);
    if (isQA && ['open', 'complete'].includes(r.state)) card.append(signForm(r));
    if (isQA && r.state === 'released') card.append(activateForm());
    if (isQA && doc.handoff && ['active', 'handed_off'].includes(r.state) && !doc.documents.length) {
      const b = el('button', { class: 'btn primary', type: 'button', id: 'ho-btn' }, t('ho_btn'));
      b.addEventListener('click', async () => {
        try { draw(await app.api('POST', base + '/handoff')); app.toast(t('ho_done'), 'info'); } catch (e) { app.toast(e.message); }
      });
      card.append(b);
    }
    return card;
  }

  function signForm(r) {
    const pw = el('input', { type: 'password', id: 'sig-pw', autocomplete: 'current-password', required: true });
    const meaning = el('div', { class: 'row', id: 'sig-meaning' }, ...['released', 'rejected'].map((m) =>
      el('label', { class: 'chk' }, el('input', { type: 'radio', name: 'meaning', value: m, checked: m === 'released' }), t('sig_' + m))));
    const comment = el('textarea', { id: 'sig-comment', rows: 2, maxlength: 2000, required: true });
    const btn = el('button', { class: 'btn primary', type: 'submit', id: 'sig-btn' }, t('sig_sign'));
    const msg = el('div', { class: 'msg', id: 'sig-msg' });
    const form = el('form', { class: 'signform', id: 'sig-form' }, el('h3', {}, t('sig_form'), ' — ', app.session.user.name),
      el('label', {}, t('sig_meaning'), meaning), el('label', {}, t('sig_comment'), comment), el('label', {}, t('sig_pw'), pw), msg, btn);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const m = form.querySelector('input[name=meaning]:checked').value;
      if (!(await app.confirm(t('sig_form'), t(m === 'released' ? 'sig_confirm_rel' : 'sig_confirm_rej', r.header.batch), t('sig_sign')))) return;
      msg.textContent = '';
      try {
        const out = await app.api('POST', base + '/sign', { password: pw.value, meaning: m, comment: comment.value, hash: r.hash });
        app.toast(out.waiting ? t('sig_wait') : t('sig_done'), 'info');
        draw(out);
      } catch (err) { msg.textContent = err.message; pw.value = ''; pw.focus(); }
    });
    return form;
  }

  function activateForm() {
    const pw = el('input', { type: 'password', id: 'act-pw', autocomplete: 'current-password', required: true });
    const msg = el('div', { class: 'msg', id: 'act-msg' });
    const form = el('form', { class: 'signform', id: 'act-form' }, el('h3', {}, t('act_title')), el('p', { class: 'hint' }, t('act_hint')),
      el('label', {}, t('act_pw'), pw), msg, el('button', { class: 'btn primary', type: 'submit', id: 'act-btn' }, t('act_btn')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const out = await app.api('POST', base + '/activate', { password: pw.value });
        if (out.handoff_error) app.toast(t('ho_err', out.handoff_error)); else app.toast(t('act_done'), 'info');
        draw(out);
      } catch (err) { msg.textContent = err.message; pw.value = ''; }
    });
    return form;
  }

  function documentsCard(d) {
    const card = el('section', { class: 'card', id: 'rec-docs' }, el('h2', {}, t('doc_title')));
    if (!d.outbox) { card.append(el('p', { class: 'hint' }, t('doc_no_outbox'))); return card; }
    if (d.documents_error) card.append(el('p', { class: 'msg' }, d.documents_error));
    card.append(table(app, ['doc_format', 'doc_state', 'doc_to', ''], d.documents.map((x) => {
      const log = el('td', { colspan: 4, class: 'attempts' });
      const logRow = el('tr', { hidden: true }, log);
      const show = el('button', { class: 'btn', type: 'button', 'data-attempts': x.id }, t('doc_attempts'));
      show.addEventListener('click', async () => {
        if (!logRow.hidden) { logRow.hidden = true; return; }
        try {
          const as = await app.api('GET', '/qa/documents/' + encodeURIComponent(x.id) + '/attempts');
          log.replaceChildren(table(app, ['rec_when', 'doc_to', 'rec_what', 'doc_state', ''], as.map((a) => el('tr', {},
            el('td', {}, when(app, a.at)), el('td', {}, a.endpoint || a.by || ''), el('td', {}, a.op + (a.n ? ' #' + a.n : '')),
            el('td', {}, a.outcome + (a.status ? ` (HTTP ${a.status})` : '')), el('td', { class: 'code' }, a.error || a.answer || '')))));
          logRow.hidden = false;
        } catch (e) { app.toast(e.message); }
      });
      const resend = el('button', { class: 'btn danger', type: 'button', 'data-resend': x.id, hidden: !(canResend && x.state === 'failed') }, t('doc_resend'));
      resend.addEventListener('click', async () => {
        try { await app.api('POST', '/qa/documents/' + encodeURIComponent(x.id) + '/resend'); app.toast(t('doc_resent'), 'info'); draw(await app.api('GET', base)); } catch (e) { app.toast(e.message); }
      });
      return [el('tr', { 'data-doc': x.id, 'data-state': x.state },
        el('td', {}, el('b', {}, x.format), el('div', { class: 'sub code' }, x.id)),
        el('td', {}, el('span', { class: 'badge d-' + x.state }, t('ds_' + x.state))),
        el('td', {}, ...x.deliveries.map((dl) => el('div', { class: 'dl' }, el('b', {}, dl.endpoint), ': ', t('ds_' + dl.state),
          dl.error ? el('div', { class: 'msg' }, dl.error) : null, dl.answer ? el('div', { class: 'sub' }, dl.answer) : null))),
        el('td', { class: 'row' }, show, resend)), logRow];
    }).flat()));
    return card;
  }

  function reconCard(r) {
    return el('section', { class: 'card', id: 'rec-recon' }, el('h2', {}, t('rec_recon')),
      el('div', { class: 'levels' }, ...r.levels.map((lv) => el('div', { class: 'level' }, el('h3', {}, lv.level, lv.ratio ? ` ×${lv.ratio}` : ''),
        el('ul', { class: 'eqs' }, ...lv.equations.map((eq) => el('li', { class: eq.ok ? 'ok' : 'bad' }, el('span', { class: 'mark' }, eq.ok ? '✓' : '✗'), eq.text))),
        lv.full_parents + lv.partial_parents + lv.mixed_parents ? el('div', { class: 'sub' }, t('rec_parents', lv.full_parents, lv.partial_parents, lv.mixed_parents)) : null))));
  }

  function detailsCard(r) {
    const tr = (...cells) => el('tr', {}, ...cells.map((c) => el('td', {}, c ?? '')));
    return el('section', { class: 'card', id: 'rec-details' },
      el('h2', {}, t('rec_rejects')), table(app, ['rec_kind', 'rec_reason', 'rec_n'], r.rejects.map((x) => tr(x.kind, x.reason, x.n))),
      el('h2', {}, t('rec_challenge')), table(app, ['rec_when', 'rec_who', 'doc_state', ''], r.challenges.map((c) => tr(when(app, c.at), c.by, t(c.passed ? 'rec_passed' : 'rec_failed'),
        c.steps.map((s) => `${s.ok ? '✓' : '✗'} ${s.step}: ${s.got}`).join(' · ')))),
      el('h2', {}, t('rec_alarms')), table(app, ['rec_when', 'rec_source', 'rec_what', 'rec_ack'], r.alarms.map((a) => tr(when(app, a.at), a.source, a.text,
        a.ack_by ? `${a.ack_by} · ${when(app, a.ack_at)}${a.ack_note ? ' · ' + a.ack_note : ''}` : el('b', { class: 'bad' }, t('rec_unack'))))),
      el('h2', {}, t('rec_manual')), table(app, ['rec_when', 'rec_who', 'rec_what', 'rec_why'], r.manual_actions.map((m) => tr(when(app, m.at), m.user, m.what + (m.detail ? ' ' + m.detail : ''), m.why))),
      el('h2', {}, t('rec_trail'), ' ', el('span', { class: 'chain ' + (r.chain.verified ? 'ok' : 'bad'), id: 'chain' }, t('rec_chain'), ': ', r.chain.verified ? '✓ ' : '✗ ', r.chain.text)),
      table(app, ['#', 'rec_when', 'rec_who', 'rec_what', '', 'rec_prev'], r.trail.map((e) => el('tr', {}, el('td', {}, e.seq), el('td', {}, when(app, e.at)), el('td', {}, e.actor),
        el('td', {}, e.what), el('td', { class: 'code' }, clip(e.detail)), el('td', { class: 'code' }, (e.prev || '').slice(0, 12) + '…')))),
      r.after_decision?.length ? [el('h2', {}, t('rec_after')), table(app, ['#', 'rec_when', 'rec_who', 'rec_what', ''], r.after_decision.map((e) => tr(e.seq, when(app, e.at), e.actor, e.what, el('span', { class: 'code' }, clip(e.detail)))))] : null);
  }

  draw(doc);
  // While a document is on its way, its status is asked again every 2 s;
  // only the documents' card and the state badge are redrawn (a password
  // being typed is kept).
  const timer = setInterval(async () => {
    if (!doc.documents.some((x) => !['delivered', 'failed', 'superseded'].includes(x.state) || (x.state === 'delivered' && !x.handed_off))) return;
    try {
      const d = await app.api('GET', base);
      doc.documents = d.documents;
      const fresh = documentsCard(d);
      docsCard.replaceWith(fresh);
      docsCard = fresh;
      root.querySelector('#rec-header [data-state]')?.replaceWith(stateBadge(app, d.record.state));
    } catch { /* the next tick tries again */ }
  }, 2000);
  return () => clearInterval(timer);
}
