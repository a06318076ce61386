// The engineer's screen: the devices' live signals (polled twice a second),
// test actions (refused by the line while a batch runs — the refusal is
// shown in words), the verdict-latency histogram by stage (inline SVG),
// device round trips and links, and the configuration as loaded.
import { strings as ov } from './overview.js';

export const strings = {
  zh: {
    en_monitor: '信号监视', en_signal: '信号', en_address: '地址', en_value: '值', en_age: '数据年龄', en_never: '从未读取',
    en_printer: '打印机', en_cameras: '相机计数', en_read_at: '读取于 {0}', en_read_err: '设备读取失败：{0}',
    en_tests: '测试动作', en_busy: '批次 {0} 正在运行（{1}）：测试动作会被拒绝。', en_free: '没有批次在运行：可以进行测试动作。',
    en_output: '写测试输出', en_out_signal: '输出信号', en_out_value: '值', en_write: '写入',
    en_print: '打印测试码', en_print_text: '测试文字', en_print_go: '打印',
    en_camera: '读取相机', en_camera_go: '读取一次',
    en_done: '{0}：{1}（{2} ms）', en_refused: '已拒绝：{0}', en_failed: '设备未完成测试动作：{0}',
    en_refused_busy: '批次 {0} 正在运行（{1}），测试动作会影响在线产品。请先完成批次。',
    en_hist: '判定延迟分布（按阶段）', en_hist_n: '{0} 个判定 · 平均 {1} ms', en_hist_none: '本批次还没有判定',
    st_total: '总计', st_camera: '相机', st_queue: '排队', st_journal: '记账', st_plc: 'PLC 写入', st_controller: '控制器',
    en_rt: '设备往返时间', en_device: '设备', en_what: '测量', en_n: '次数',
    rt_plc: '判定写入 PLC', rt_camera: '触发 → 相机结果', rt_ledger: '判定写入账本',
    en_links: '设备连接', en_config: '已加载配置', en_machine: '产线参数', en_driver: '驱动', en_endpoint: '地址',
    en_not_reported: '接线未提供设备参数，只列出已连接的设备。', en_none: '无',
    m_deadline_ms: '判定时限 (ms)', m_printer_buffer: '打印缓冲', m_alloc_chunk: '分配批量', m_min_grade: '最低等级', m_gate_confirm: '剔除口确认',
    m_gate_timeout_ms: '剔除口超时 (ms)', m_label_mismatch_hold: '标签不符保持', m_challenge: '挑战测试', m_io_timeout_ms: 'I/O 超时 (ms)',
    en_unknown: '未知（尚无消息）', en_no_msg: '无', en_yes: '是', en_no: '否', en_unavailable: '此控制器未配置工程访问。',
  },
  en: {
    en_monitor: 'Signal monitor', en_signal: 'Signal', en_address: 'Address', en_value: 'Value', en_age: 'Age', en_never: 'never read',
    en_printer: 'Printer', en_cameras: 'Camera counters', en_read_at: 'read at {0}', en_read_err: 'reading the devices failed: {0}',
    en_tests: 'Test actions', en_busy: 'Batch {0} is running ({1}): test actions will be refused.', en_free: 'No batch is running: test actions are allowed.',
    en_output: 'Write a test output', en_out_signal: 'Output signal', en_out_value: 'Value', en_write: 'Write',
    en_print: 'Print a test code', en_print_text: 'Test text', en_print_go: 'Print',
    en_camera: 'Read the camera', en_camera_go: 'Read once',
    en_done: '{0}: {1} ({2} ms)', en_refused: 'Refused: {0}', en_failed: 'The device did not carry out the test: {0}',
    en_refused_busy: 'batch {0} is running ({1}); a test action would reach units on the line. Complete the batch first.',
    en_hist: 'Verdict latency by stage', en_hist_n: '{0} verdicts · mean {1} ms', en_hist_none: 'no verdicts in this batch yet',
    st_total: 'Total', st_camera: 'Camera', st_queue: 'Queue', st_journal: 'Journal', st_plc: 'PLC write', st_controller: 'Controller',
    en_rt: 'Device round trips', en_device: 'Device', en_what: 'Measured', en_n: 'N',
    rt_plc: 'verdict written to the PLC', rt_camera: 'trigger → camera result', rt_ledger: 'verdict journaled',
    en_links: 'Device links', en_config: 'Configuration as loaded', en_machine: 'Line settings', en_driver: 'Driver', en_endpoint: 'Address',
    en_not_reported: 'The wiring reports no device settings; only the devices wired are listed.', en_none: 'none',
    m_deadline_ms: 'Verdict deadline (ms)', m_printer_buffer: 'Printer buffer', m_alloc_chunk: 'Allocation chunk', m_min_grade: 'Minimum grade', m_gate_confirm: 'Gate confirms',
    m_gate_timeout_ms: 'Gate timeout (ms)', m_label_mismatch_hold: 'Label mismatches to hold', m_challenge: 'Challenge test', m_io_timeout_ms: 'I/O timeout (ms)',
    en_unknown: 'unknown (no message yet)', en_no_msg: 'none', en_yes: 'yes', en_no: 'no', en_unavailable: 'This controller has no engineering access configured.',
  },
};

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, ...kids) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

// The page's own styles, once (CSP: no inline styles).
function styles() {
  if (document.getElementById('css-engineer')) return;
  document.head.append(Object.assign(document.createElement('link'), { id: 'css-engineer', rel: 'stylesheet', href: '/static/pages/engineer.css' }));
}

export async function render(root, app) {
  styles();
  app.addStrings(ov);
  const { el } = app;
  const t = app.t.bind(app);
  const canTest = app.session.user.roles.includes('engineer');
  const num = (x, d = 0) => Number(x ?? 0).toLocaleString(app.lang === 'en' ? 'en' : 'zh-CN', { maximumFractionDigits: d, minimumFractionDigits: d });
  const clock = (s) => new Date(s).toLocaleTimeString(app.lang === 'en' ? 'en-GB' : 'zh-CN');
  const age = (ms) => (ms < 0 ? t('en_never') : ms < 1000 ? `${num(ms)} ms` : `${num(ms / 1000, 1)} s`);
  const hrow = (...keys) => el('thead', {}, el('tr', {}, ...keys.map((k) => el('th', {}, t(k)))));
  const stateWord = (s) => { const k = 's_' + s; const w = t(k); return w === k ? s : w; };

  const busyBox = el('div', { class: 'en-busy', id: 'en-busy' });
  const signals = el('table', { class: 'tbl small', id: 'en-signals' });
  const printer = el('div', { class: 'kv', id: 'en-printer' });
  const cameras = el('div', { class: 'kv', id: 'en-cameras' });
  const readAt = el('div', { class: 'sub', id: 'en-read-at' });
  const result = el('div', { class: 'en-result', id: 'en-result', hidden: true });
  const outSel = el('select', { id: 'en-out-signal' });
  const outVal = el('input', { id: 'en-out-value', type: 'number', value: '1', min: '0', max: '65535', inputmode: 'numeric' });
  const printText = el('input', { id: 'en-print-text', value: 'TEST 测试', maxlength: '64' });
  const hist = el('div', { class: 'en-hist', id: 'en-hist' });
  const stageBar = el('div', { class: 'en-stages' });
  const histNote = el('div', { class: 'sub', id: 'en-hist-note' });
  const rt = el('table', { class: 'tbl small', id: 'en-rt' });
  const links = el('div', { id: 'en-links' });
  const config = el('div', { id: 'en-config' });
  let stage = 'total';
  let doc = null;

  function show(kind, text) {
    result.hidden = false;
    result.className = 'en-result ' + kind;
    result.textContent = text;
  }
  // refusal turns the line's words ("batch B1 is open (Execute)") into a sentence.
  function refusal(msg) {
    const m = /batch (\S+) is open \((\w+)\)/.exec(msg);
    return m ? t('en_refused_busy', m[1], stateWord(m[2])) : msg;
  }
  async function test(kind, label, body) {
    try {
      const r = await app.api('POST', '/engineer/test', { kind, ...body });
      show('ok', t('en_done', label, r.result, num(r.took_ms, 1)));
    } catch (e) {
      if (e.code === 'refused') show('bad', t('en_refused', refusal(e.message)));
      else if (e.status === 502) show('bad', t('en_failed', e.message.replace(/^[^:]*: /, ''))); // the device's answer
      else show('bad', e.message);
    }
  }
  const act = (title, ...kids) => el('div', { class: 'en-act' }, el('h3', {}, title), el('div', { class: 'row' }, ...kids));
  const tests = canTest ? el('div', {},
    act(t('en_output'), el('label', { class: 'lbl' }, t('en_out_signal'), outSel), el('label', { class: 'lbl' }, t('en_out_value'), outVal),
      el('button', { class: 'btn primary', type: 'button', id: 'en-test-output', onclick: () => test('output', t('en_output'), { output: outSel.value, value: Number(outVal.value) }) }, t('en_write'))),
    act(t('en_print'), el('label', { class: 'lbl grow' }, t('en_print_text'), printText),
      el('button', { class: 'btn primary', type: 'button', id: 'en-test-print', onclick: () => test('print', t('en_print'), { text: printText.value }) }, t('en_print_go'))),
    act(t('en_camera'), el('button', { class: 'btn primary', type: 'button', id: 'en-test-camera', onclick: () => test('camera', t('en_camera'), {}) }, t('en_camera_go'))),
    result) : null;

  root.append(el('div', { class: 'en' },
    el('section', { class: 'card en-mon' }, el('h2', {}, t('en_monitor')), readAt, signals, el('h3', {}, t('en_printer')), printer, el('h3', {}, t('en_cameras')), cameras),
    el('section', { class: 'card en-test' }, el('h2', {}, t('en_tests')), busyBox, tests, el('h2', { class: 'mt' }, t('en_links')), links, el('h2', { class: 'mt' }, t('en_rt')), rt),
    el('section', { class: 'card en-lat' }, el('h2', {}, t('en_hist')), stageBar, hist, histNote, el('h2', { class: 'mt' }, t('en_config')), config)));

  function drawMonitor(m) {
    signals.replaceChildren(hrow('en_signal', 'en_address', 'en_value', 'en_age'), el('tbody', {}, ...m.signals.map((s) =>
      el('tr', { 'data-signal': s.name, class: s.age_ms < 0 ? 'stale' : '' }, el('td', {}, el('b', {}, s.name)), el('td', { class: 'code' }, s.address || '—'),
        el('td', { class: 'val' }, s.value), el('td', { class: 'age' }, age(s.age_ms))))));
    const kv = (obj) => { const e = Object.entries(obj || {}).sort(); return e.length ? e.map(([k, v]) => el('div', {}, el('span', {}, k), el('b', {}, v))) : [el('div', { class: 'sub' }, t('en_none'))]; };
    printer.replaceChildren(...kv(m.printer));
    cameras.replaceChildren(...kv(m.cameras));
    readAt.textContent = m.error ? t('en_read_err', m.error) : t('en_read_at', clock(m.at));
    readAt.classList.toggle('bad', !!m.error);
    busyBox.textContent = m.busy ? t('en_busy', m.batch || '—', stateWord(doc?.state || '')) : t('en_free');
    busyBox.className = 'en-busy ' + (m.busy ? 'on' : 'off');
    if (canTest && !outSel.options.length && m.signals.length) {
      outSel.replaceChildren(...m.signals.map((s) => el('option', { value: s.name }, s.name)));
    }
    root.dataset.reads = String(Number(root.dataset.reads || 0) + 1);
  }

  function drawHist() {
    const h = (doc?.histograms || []).find((x) => x.stage === stage);
    for (const b of stageBar.children) b.classList.toggle('on', b.dataset.stage === stage);
    if (!h || !h.count) { hist.replaceChildren(); histNote.textContent = t('en_hist_none'); return; }
    const W = 380, H = 200, pad = 28, n = h.buckets.length, bw = (W - pad) / n;
    const max = Math.max(1, ...h.buckets.map((b) => b.n));
    const g = svg('svg', { viewBox: `0 0 ${W} ${H + 34}`, width: '100%', role: 'img', 'aria-label': t('st_' + stage) });
    g.append(svg('line', { x1: pad, y1: H, x2: W, y2: H, class: 'axis' }));
    h.buckets.forEach((b, i) => {
      const bh = Math.round((b.n / max) * (H - 18));
      const x = pad + i * bw;
      g.append(svg('rect', { x: x + 2, y: H - bh, width: bw - 4, height: Math.max(bh, b.n ? 1 : 0), class: 'bar' }, svg('title', {}, `≤ ${b.le} ms: ${b.n}`)));
      if (b.n) g.append(svg('text', { x: x + bw / 2, y: H - bh - 4, class: 'cnt' }, num(b.n)));
      g.append(svg('text', { x: x + bw / 2, y: H + 14, class: 'le' }, b.le === '+Inf' ? '>' + h.buckets[n - 2].le : b.le));
    });
    g.append(svg('text', { x: W / 2 + pad / 2, y: H + 30, class: 'le' }, '≤ ms'));
    hist.replaceChildren(g);
    histNote.textContent = t('en_hist_n', num(h.count), num(h.sum_ms / h.count, 2));
  }

  function drawDoc(d) {
    doc = d;
    if (!stageBar.children.length) {
      stageBar.append(...['total', 'camera', 'queue', 'journal', 'plc', 'controller'].map((s) =>
        el('button', { class: 'btn chipbtn', type: 'button', 'data-stage': s, onclick: () => { stage = s; drawHist(); } }, t('st_' + s))));
    }
    drawHist();
    rt.replaceChildren(hrow('en_device', 'en_what', 'en_n', 'p50', 'p99', 'max'), el('tbody', {}, ...(d.round_trip.length ? d.round_trip.map((r) =>
      el('tr', {}, el('td', {}, el('b', {}, r.device)), el('td', {}, t('rt_' + r.device)), el('td', {}, num(r.n)),
        el('td', {}, num(r.p50_ms, 2)), el('td', {}, num(r.p99_ms, 2)), el('td', {}, num(r.max_ms, 2))))
      : [el('tr', {}, el('td', { colspan: '6', class: 'sub' }, t('en_hist_none')))])));
    links.replaceChildren(...d.devices.map((k) => el('div', { class: 'link ' + (k.link === 'up' ? 'up' : k.link === 'down' ? 'down' : 'unknown') },
      el('b', {}, k.name), ' ', k.link === 'up' ? t('ov_up') : k.link === 'down' ? t('ov_down') : t('en_unknown'), ` · ${t('ov_age')} ${k.age_ms < 0 ? t('en_no_msg') : age(k.age_ms)}`, k.error ? ` · ${k.error}` : '')));
    const c = d.config;
    const M = c.machine;
    const yes = (b) => (b ? t('en_yes') : t('en_no'));
    const mrows = [['m_deadline_ms', num(M.deadline_ms)], ['m_printer_buffer', num(M.printer_buffer)], ['m_alloc_chunk', num(M.alloc_chunk)],
      ['m_min_grade', M.min_grade || '—'], ['m_gate_confirm', yes(M.gate_confirm)], ['m_gate_timeout_ms', M.gate_timeout_ms ? num(M.gate_timeout_ms) : '—'],
      ['m_label_mismatch_hold', M.label_mismatch_hold || '—'], ['m_io_timeout_ms', M.io_timeout_ms ? num(M.io_timeout_ms) : '—'],
      ['m_challenge', M.challenge.length ? M.challenge.join(', ') : '—']];
    config.replaceChildren(...[el('h3', {}, `${t('en_machine')} · ${c.line}`),
      el('table', { class: 'tbl small' }, el('tbody', {}, ...mrows.map(([k, v]) => el('tr', {}, el('th', {}, t(k)), el('td', {}, v))))),
      c.reported ? null : el('div', { class: 'sub' }, t('en_not_reported')),
      ...c.devices.map((dv) => el('div', { class: 'en-dev', 'data-device': dv.name },
        el('h3', {}, dv.name, dv.kind && dv.kind !== dv.name ? ` (${dv.kind})` : ''),
        dv.driver || dv.endpoint ? el('div', { class: 'sub' }, dv.driver ? `${t('en_driver')}: ${dv.driver}` : '', dv.driver && dv.endpoint ? ' · ' : '', dv.endpoint ? `${t('en_endpoint')}: ${dv.endpoint}` : '') : null,
        dv.settings.length ? el('table', { class: 'tbl small' }, el('tbody', {}, ...dv.settings.map((s) => el('tr', {}, el('th', { class: 'code' }, s.key), el('td', { class: 'code' }, s.value))))) : null))].filter(Boolean));
  }

  let stop = false;
  let timer = null;
  let n = 0;
  async function poll() {
    if (stop) return;
    try {
      if (n % 4 === 0 || !doc) drawDoc(await app.api('GET', '/engineer'));
      drawMonitor(await app.api('GET', '/engineer/monitor'));
    } catch (e) {
      if (e.code === 'unavailable') { root.replaceChildren(el('div', { class: 'card' }, el('h2', {}, t('en_monitor')), el('p', {}, t('en_unavailable')), el('p', { class: 'sub' }, e.message))); return; }
      readAt.textContent = e.message;
      readAt.classList.add('bad');
    }
    n++;
    if (!stop) timer = setTimeout(poll, 500); // live: the monitor is at most ~0.5 s old
  }
  await poll();
  return () => { stop = true; clearTimeout(timer); };
}
