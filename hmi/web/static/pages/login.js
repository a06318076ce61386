// Login page.
export const strings = {
  zh: { login_title: '登录', user: '用户名', password: '密码', login: '登录', setup_needed: '首次运行：请使用控制器日志中打印的一次性初始化链接创建管理员账户。', demo_hint: '演示账户：operator、qa、engineer、admin，密码 demo' },
  en: { login_title: 'Log in', user: 'User', password: 'Password', login: 'Log in', setup_needed: 'First run: create the admin account with the one-time setup link printed in the controller\'s log.', demo_hint: 'Demo accounts: operator, qa, engineer, admin; password demo' },
};

export async function render(root, app) {
  const { el, t } = { el: app.el, t: app.t.bind(app) };
  const user = el('input', { id: 'user', name: 'user', autocomplete: 'username', required: true, autofocus: true });
  const pw = el('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const msg = el('p', { class: 'msg', id: 'login-msg' });
  const form = el('form', { class: 'card login' },
    el('h1', {}, t('login_title')),
    el('label', { for: 'user' }, t('user')), user,
    el('label', { for: 'password' }, t('password')), pw,
    el('button', { class: 'btn primary wide', type: 'submit', id: 'login-btn' }, t('login')), msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    msg.textContent = '';
    try {
      app.session = await app.api('POST', '/session', { user: user.value.trim(), password: pw.value });
      pw.value = '';
      app.go('overview');
    } catch (err) {
      msg.textContent = err.message;
      pw.select();
    }
  });
  root.append(form);
  try {
    const s = await app.api('GET', '/setup');
    if (s.needed) form.append(el('p', { class: 'hint' }, t('setup_needed')));
    if (s.demo) form.append(el('p', { class: 'hint' }, t('demo_hint')));
  } catch { /* the form works without */ }
}
