// The operator's line overview, live over server-sent events.
import { css } from './ops.js';
export const strings = {
  zh: {
    ov_state: '产线状态', ov_batch: '批次', ov_rate: '速度', ov_per_min: '件/分', ov_counts: '计数', ov_good: '合格', ov_rejected: '剔除',
    ov_uncertain: '待判定', ov_sampled: '抽样', ov_triggered: '触发', ov_by_reason: '剔除原因', ov_agg: '逐级关联', ov_level: '级别',
    ov_full: '满箱', ov_partial: '零箱', ov_packed: '已装', ov_loose: '未装', ov_codes_left: '剩余码量', ov_pool: '码池', ov_available: '可用',
    ov_last: '最近产品', ov_item: '序号', ov_code: '追溯码', ov_verdict: '判定', ov_pass: '合格', ov_reject: '剔除',
    ov_devices: '设备连接', ov_up: '已连接', ov_down: '断开', ov_age: '最近消息', ov_all_linked: '所有设备正常',
    ov_alarms: '报警', ov_ack: '确认', ov_acked: '{0} 于 {1} 确认', ov_cleared: '已消除', ov_none: '无',
    ov_commands: '命令', ov_confirm_title: '确认「{0}」？', ov_confirm_abort: '中止会立即停止产线，在途产品全部剔除。', ov_confirm_clear: '清除会复位故障状态。',
    ov_confirm_complete: '完成批次后，本批次不再生产。', ov_sent: '已执行：{0}', ov_refused: '命令被拒绝',
    ov_purge: '重启后需要清线', ov_purge_steps: '控制器重启时产线上还有产品。请按步骤清线：', ov_purge_1: '停止输送带，确认产线已停下。',
    ov_purge_2: '取下打印机与剔除装置之间的所有产品，放入剔除箱。', ov_purge_3: '确认剔除装置前已无产品。', ov_purge_go: '清线完成，确认', ov_purge_start: '开始清线',
    ov_product: '产品', ov_planned: '计划', ov_started_by: '开批人', ov_ready: '产线就绪：可以开始下一批次', ov_new_batch: '按工单开始批次',
    ov_voided: '重启时作废 {0} 个码；拆出 {1} 个包装待返工。', ov_in_progress: '进行中', ov_no_batch: '没有批次：请按工单开始批次', ov_unknown: '尚无消息',
    ov_live: '实时', ov_offline: '连接中断，正在重连…', ov_in_printer: '打印机缓冲',
    ov_why_in: '当前状态「{1}」下不能执行「{0}」', ov_why_purge: '重启后须先清线：请按「开始清线」', ov_why_ack: '没有需要确认的故障', ov_why_faults: '设备故障未排除，不能解除保持', ov_why_noclear: '无需清线',
    s_Stopped: '已停止', s_Resetting: '复位中', s_Idle: '就绪', s_Starting: '启动中', s_Execute: '运行中', s_Holding: '保持中', s_Held: '已保持',
    s_Unholding: '解除保持中', s_Suspending: '暂停中', s_Suspended: '已暂停', s_Unsuspending: '恢复中', s_Completing: '完成中', s_Complete: '已完成',
    s_Aborting: '中止中', s_Aborted: '已中止', s_Clearing: '清除中', s_Stopping: '停止中',
    c_reset: '复位', c_start: '启动', c_stop: '停止', c_hold: '保持', c_unhold: '解除保持', c_suspend: '暂停', c_unsuspend: '恢复',
    c_complete: '完成批次', c_abort: '中止', c_clear: '清除', c_acknowledge: '确认故障',
    r_pass: '合格', 'r_no-read': '未读到码', r_unreadable: '码不可识别', 'r_low-grade': '打印等级低', 'r_wrong-code': '码不符', r_duplicate: '重码',
    'r_not-ours': '非本线码', r_late: '超时', 'r_no-print': '无打印记录', 'r_trigger-gap': '触发缺失', 'r_not-producing': '非生产状态', r_ledger: '账本拒绝',
    'r_controller-down': '控制器停机', 'r_rejected-at-gate': '剔除口已剔除', r_escaped: '应剔未剔',
  },
  en: {
    ov_state: 'Line state', ov_batch: 'Batch', ov_rate: 'Rate', ov_per_min: 'units/min', ov_counts: 'Counts', ov_good: 'Good', ov_rejected: 'Rejected',
    ov_uncertain: 'Undecided', ov_sampled: 'Sampled', ov_triggered: 'Triggered', ov_by_reason: 'Rejects by reason', ov_agg: 'Aggregation', ov_level: 'Level',
    ov_full: 'Full', ov_partial: 'Partial', ov_packed: 'Packed', ov_loose: 'Loose', ov_codes_left: 'Codes left', ov_pool: 'Pool', ov_available: 'Available',
    ov_last: 'Last units', ov_item: 'Item', ov_code: 'Code', ov_verdict: 'Verdict', ov_pass: 'pass', ov_reject: 'reject',
    ov_devices: 'Devices', ov_up: 'linked', ov_down: 'down', ov_age: 'Last message', ov_all_linked: 'every device linked',
    ov_alarms: 'Alarms', ov_ack: 'Acknowledge', ov_acked: 'acknowledged by {0} at {1}', ov_cleared: 'cleared', ov_none: 'none',
    ov_commands: 'Commands', ov_confirm_title: '{0}?', ov_confirm_abort: 'Abort stops the line at once; every unit in flight is rejected.', ov_confirm_clear: 'Clear resets the fault state.',
    ov_confirm_complete: 'Once complete, the batch produces no more.', ov_sent: 'done: {0}', ov_refused: 'command refused',
    ov_purge: 'Purge the line after the restart', ov_purge_steps: 'Units were on the line when the controller restarted. Purge it step by step:', ov_purge_1: 'Stop the conveyor and make sure the line stands still.',
    ov_purge_2: 'Take every unit between the printer and the reject gate off the line, into the reject bin.', ov_purge_3: 'Check that nothing is left before the reject gate.', ov_purge_go: 'Purged — confirm', ov_purge_start: 'Start the purge',
    ov_product: 'Product', ov_planned: 'Planned', ov_started_by: 'Started by', ov_ready: 'The line is ready for the next batch', ov_new_batch: 'Start a batch from a work order',
    ov_voided: '{0} codes were voided at the restart; {1} parents taken out for rework.', ov_in_progress: 'In progress', ov_no_batch: 'no batch: start one from a work order', ov_unknown: 'no message yet',
    ov_live: 'live', ov_offline: 'connection lost, reconnecting…', ov_in_printer: 'in the printer',
    ov_why_in: '{0} is not allowed while the line is {1}', ov_why_purge: 'the line must be purged first: press "Start the purge"', ov_why_ack: 'no fault to acknowledge', ov_why_faults: 'device faults are still active: cannot unhold', ov_why_noclear: 'no purge is required',
    s_Stopped: 'Stopped', s_Resetting: 'Resetting', s_Idle: 'Idle', s_Starting: 'Starting', s_Execute: 'Execute', s_Holding: 'Holding', s_Held: 'Held',
    s_Unholding: 'Unholding', s_Suspending: 'Suspending', s_Suspended: 'Suspended', s_Unsuspending: 'Unsuspending', s_Completing: 'Completing', s_Complete: 'Complete',
    s_Aborting: 'Aborting', s_Aborted: 'Aborted', s_Clearing: 'Clearing', s_Stopping: 'Stopping',
    c_reset: 'Reset', c_start: 'Start', c_stop: 'Stop', c_hold: 'Hold', c_unhold: 'Unhold', c_suspend: 'Suspend', c_unsuspend: 'Unsuspend',
    c_complete: 'Complete batch', c_abort: 'Abort', c_clear: 'Clear', c_acknowledge: 'Ack. fault',
    r_pass: 'pass', 'r_no-read': 'no read', r_unreadable: 'unreadable', 'r_low-grade': 'low grade', 'r_wrong-code': 'wrong code', r_duplicate: 'duplicate',
    'r_not-ours': 'not ours', r_late: 'late', 'r_no-print': 'no print record', 'r_trigger-gap': 'trigger gap', 'r_not-producing': 'not producing', r_ledger: 'ledger refused',
    'r_controller-down': 'controller down', 'r_rejected-at-gate': 'rejected at the gate', r_escaped: 'escaped the gate',
  },
};

const commands = ['reset', 'start', 'hold', 'unhold', 'suspend', 'unsuspend', 'stop', 'acknowledge', 'complete', 'abort', 'clear'];
const destructive = { abort: 'ov_confirm_abort', clear: 'ov_confirm_clear', complete: 'ov_confirm_complete' };
// Which commands the state makes the obvious next step (shown primary).
const next = { Stopped: ['reset'], Idle: ['start'], Execute: ['hold', 'complete'], Held: ['unhold'], Suspended: ['unsuspend'], Aborted: ['clear'], Complete: ['reset'] };

export async function render(root, app) {
  const { el } = app;
  const t = app.t.bind(app);
  const canCommand = app.session.user.roles.includes('operator');
  let ov = null;

  // refusal puts the state machine's words ("start in Stopped") in the user's language.
  const refusal = (msg) => {
    const m = /: (\w+) in (\w+)$/.exec(msg);
    if (m) return t('ov_why_in', t('c_' + m[1]), t('s_' + m[2]));
    const known = [['must be purged', 'ov_why_purge'], ['nothing to acknowledge', 'ov_why_ack'], ['device faults active', 'ov_why_faults'], ['none is required', 'ov_why_noclear']];
    const k = known.find(([s]) => msg.includes(s));
    return k ? t(k[1]) : msg;
  };
  async function command(c, confirmed) {
    if (destructive[c] && !confirmed && !(await app.confirm(t('ov_confirm_title', t('c_' + c)), t(destructive[c]), t('c_' + c)))) return;
    try {
      await app.api('POST', '/line/commands', { command: c });
      app.toast(t('ov_sent', t('c_' + c)), 'info');
    } catch (e) {
      app.toast(e.code === 'refused' ? `${t('ov_refused')}: ${refusal(e.message)}` : e.message);
    }
  }
  async function purge() {
    const g = ov?.line_overview?.purge; // the line's own guide: what the restart voided
    const texts = g?.steps?.length && app.lang !== 'zh' ? g.steps : ['ov_purge_1', 'ov_purge_2', 'ov_purge_3'].map((k) => t(k));
    const steps = el('ol', { class: 'steps' }, ...texts.map((x) => el('li', {}, el('label', { class: 'chk' }, el('input', { type: 'checkbox' }), x))));
    const body = el('div', {}, el('p', {}, t('ov_purge_steps')), g ? el('p', {}, el('b', {}, t('ov_voided', g.voided_at_restart, g.parents_taken_out))) : '', steps);
    if (!(await app.confirm(t('ov_purge'), body, t('ov_purge_go')))) return;
    if ([...steps.querySelectorAll('input')].some((i) => !i.checked)) { app.toast(t('ov_purge_steps')); return; }
    await command('clear', true);
  }
  const cmdBox = el('div', { class: 'cmds' }, ...commands.map((c) => el('button', { class: 'btn cmd' + (destructive[c] ? ' danger' : ''), type: 'button', 'data-cmd': c, onclick: () => (c === 'clear' && ov?.line.purge_required ? purge() : command(c)) }, t('c_' + c))));
  const state = el('div', { class: 'state', id: 'state' });
  const why = el('div', { class: 'why', id: 'why' });
  const purgeBox = el('div', { class: 'purge', hidden: true }, el('strong', {}, t('ov_purge')), ' ', el('button', { class: 'btn danger', type: 'button', onclick: purge }, t('ov_purge_start')));
  const head = el('div', { class: 'meta' });
  css(); // ops.css: the ready box
  const ready = el('div', { class: 'okbox ready', id: 'ov-ready', hidden: true }, el('strong', {}, t('ov_ready')),
    canCommand ? el('button', { class: 'btn primary', type: 'button', onclick: () => app.go('batch') }, t('ov_new_batch')) : null);
  const counts = el('div', { class: 'counts' });
  const reasons = el('div', { class: 'chips' });
  const agg = el('table', { class: 'tbl small' });
  const pools = el('table', { class: 'tbl small' });
  const last = el('table', { class: 'tbl small' });
  const links = el('div', { class: 'links' });
  const alarms = el('div', { class: 'alarms' });
  const live = el('span', { class: 'live off', id: 'live' }, t('ov_offline'));
  root.append(el('div', { class: 'ov' },
    el('section', { class: 'card c-state' }, el('div', { class: 'row' }, el('h2', {}, t('ov_state')), el('span', { class: 'spacer' }), live), state, why, head, ready, purgeBox,
      canCommand ? el('div', {}, el('h3', {}, t('ov_commands')), cmdBox) : null),
    el('section', { class: 'card c-counts' }, el('h2', {}, t('ov_counts')), counts, el('h3', {}, t('ov_by_reason')), reasons, el('h3', {}, t('ov_agg')), agg, el('h3', {}, t('ov_codes_left')), pools),
    el('section', { class: 'card c-last' }, el('h2', {}, t('ov_last')), last),
    el('section', { class: 'card c-dev' }, el('h2', {}, t('ov_alarms')), alarms, el('h2', {}, t('ov_devices')), links)));

  // reason in words; a reason this page does not know is shown as the line names it.
  const reason = (r) => { const k = 'r_' + r; const s = t(k); return s === k ? r : s; };
  const n = (x) => (x ?? 0).toLocaleString(app.lang === 'en' ? 'en' : 'zh-CN');
  const time = (s) => (s ? new Date(s).toLocaleTimeString(app.lang === 'en' ? 'en-GB' : 'zh-CN') : '');
  const row = (...cells) => el('tr', {}, ...cells.map((c) => el('td', {}, c)));
  const hrow = (...keys) => el('thead', {}, el('tr', {}, ...keys.map((k) => el('th', {}, t(k)))));

  function draw(o) {
    ov = o;
    const L = o.line;
    state.textContent = t('s_' + L.state);
    state.dataset.state = L.state;
    state.className = 'state s-' + L.state;
    why.textContent = L.why?.startsWith('no batch') ? t('ov_no_batch') : L.why || '';
    const lo = o.line_overview;
    const b = lo?.batch;
    ready.hidden = !lo?.ready_for_batch;
    head.replaceChildren(el('span', {}, `${t('ov_batch')}: `, el('b', { id: 'ov-batch' }, o.batch || '—')),
      b ? el('span', {}, `${t('ov_product')}: `, el('b', {}, b.product), ` · ${t('ov_planned')} ${n(b.order?.planned_qty)}`) : '',
      b?.started_by ? el('span', {}, `${t('ov_started_by')}: ${b.started_by}`) : '', el('span', {}, `${t('ov_rate')}: `, el('b', { id: 'rate' }, n(Math.round(o.rate_per_min))), ' ', t('ov_per_min')),
      el('span', {}, `${t('ov_in_printer')}: ${n(L.in_printer)}`));
    purgeBox.hidden = !L.purge_required;
    const primary = L.purge_required ? ['clear'] : o.line_overview?.ready_for_batch ? [] : next[L.state] || [];
    for (const b of cmdBox.children) b.classList.toggle('primary', primary.includes(b.dataset.cmd));
    const C = L.counters;
    const l1 = (L.ledger || []).find((x) => x.level === 1) || {};
    counts.replaceChildren(...[['ov_good', C.passed, 'passed', 'good'], ['ov_rejected', C.rejected, 'rejected', 'bad'], ['ov_uncertain', L.in_flight, 'uncertain', ''],
      ['ov_sampled', l1.sampled, 'sampled', ''], ['ov_triggered', C.triggered, 'triggered', '']].map(([k, v, id, cls]) =>
      el('div', { class: 'count ' + cls }, el('div', { class: 'num', 'data-k': id }, n(v)), el('div', { class: 'lbl' }, t(k)))));
    const rr = Object.entries(C.rejects_by_reason || {}).sort((a, b) => b[1] - a[1]);
    reasons.replaceChildren(...(rr.length ? rr.map(([r, v]) => el('div', { class: 'chip' }, el('span', {}, reason(r)), el('b', {}, n(v)))) : [el('div', { class: 'sub' }, t('ov_none'))]));
    const inProg = Object.fromEntries((lo?.levels || []).map((x) => [x.level, x.in_progress]));
    agg.replaceChildren(hrow('ov_level', 'ov_full', 'ov_partial', 'ov_packed', 'ov_loose', ...(lo ? ['ov_in_progress'] : [])),
      ...(L.ledger || []).map((x) => row('L' + x.level, n(x.full_parents), n(x.partial_parents), n(x.packed), n(x.loose), ...(lo ? [x.level > 1 ? n(inProg[x.level]) : '—'] : []))));
    pools.replaceChildren(hrow('ov_pool', 'ov_available'), ...(o.pools || []).map((p) => row(p.pool, n(p.available))));
    for (const c of lo?.codes_left || []) if (c.warning) pools.append(el('tr', { class: 'rej' }, el('td', { colspan: '2' }, `⚠ L${c.level} ${c.pool}: ${c.warning}`)));
    last.replaceChildren(hrow('ov_item', 'ov_code', 'ov_verdict'), ...(o.last_units || []).slice(0, 8).map((u) =>
      el('tr', { class: u.pass ? '' : 'rej' }, el('td', {}, u.item), el('td', { class: 'code' }, u.code || '—'), el('td', {}, u.pass ? t('ov_pass') : `${t('ov_reject')} · ${reason(u.reason)}`))));
    links.replaceChildren(...((o.links || []).length ? o.links.map((k) => el('div', { class: 'link ' + (k.up ? 'up' : k.state === 'unknown' ? 'unknown' : 'down') },
      el('b', {}, k.device), ' ', k.up ? t('ov_up') : k.state === 'unknown' ? t('ov_unknown') : t('ov_down'), k.age_ms >= 0 ? ` · ${t('ov_age')} ${(k.age_ms / 1000).toFixed(1)} s` : '', k.fault ? ` · ${k.fault}` : ''))
      : [el('div', { class: 'link up' }, t('ov_all_linked'))]));
    alarms.replaceChildren(...((o.alarms || []).length ? o.alarms.slice(0, 8).map((a) => el('div', { class: 'alarm' + (a.ack_by ? ' acked' : '') },
      el('div', {}, el('b', {}, a.device), ' ', a.text), el('div', { class: 'sub' }, time(a.raised), a.cleared ? ' · ' + t('ov_cleared') : '',
        a.ack_by ? ' · ' + t('ov_acked', a.ack_by, time(a.ack_at)) : ''),
      !a.ack_by && canCommand ? el('button', { class: 'btn', type: 'button', onclick: async () => { try { await app.api('POST', `/line/alarms/${a.id}/ack`); } catch (e) { app.toast(e.message); } } }, t('ov_ack')) : null))
      : [el('div', { class: 'sub' }, t('ov_none'))]));
    root.dataset.seq = o.seq;
  }

  try { draw(await app.api('GET', '/line')); } catch (e) { app.toast(e.message); }
  const es = new EventSource('/api/v1/line/live');
  es.addEventListener('overview', (e) => { live.className = 'live on'; live.textContent = t('ov_live'); draw(JSON.parse(e.data)); });
  es.onerror = () => {
    live.className = 'live off';
    live.textContent = t('ov_offline');
    app.api('GET', '/session').catch(() => {}); // a 401 takes the user to the login page
  };
  return () => es.close();
}
