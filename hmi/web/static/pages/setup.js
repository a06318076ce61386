// First run: create the admin account with the one-time token (#/setup/<token>).
export const strings = {
  zh: { setup_title: '创建管理员账户', setup_user: '用户名（小写字母、数字）', setup_name: '姓名', setup_pw: '密码（至少 8 位）', setup_go: '创建', setup_done: '管理员已创建，请登录。' },
  en: { setup_title: 'Create the admin account', setup_user: 'User name (lower-case letters, digits)', setup_name: 'Full name', setup_pw: 'Password (8 characters or more)', setup_go: 'Create', setup_done: 'The admin exists now; log in.' },
};

export async function render(root, app, token) {
  const { el } = app;
  const t = app.t.bind(app);
  const f = { user: el('input', { id: 'su-user', required: true }), name: el('input', { id: 'su-name', required: true }), password: el('input', { id: 'su-pw', type: 'password', required: true, autocomplete: 'new-password' }) };
  const msg = el('p', { class: 'msg' });
  const form = el('form', { class: 'card login' }, el('h1', {}, t('setup_title')),
    el('label', { for: 'su-user' }, t('setup_user')), f.user, el('label', { for: 'su-name' }, t('setup_name')), f.name,
    el('label', { for: 'su-pw' }, t('setup_pw')), f.password, el('button', { class: 'btn primary wide', type: 'submit' }, t('setup_go')), msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await app.api('POST', '/setup', { token: token || '', user: f.user.value.trim(), name: f.name.value, password: f.password.value });
      app.toast(t('setup_done'), 'info');
      app.go('login');
    } catch (err) { msg.textContent = err.message; }
  });
  root.append(form);
}
