import { jobNeedsTenant } from '../../src/lint/rules/job-needs-tenant.js';
import { runRule } from './rule-tester.js';

runRule('job-needs-tenant', jobNeedsTenant, {
  valid: [
    `queue.add('transcribe', { tenantId, recordingId });`,
    `await boss.send('transcribe', { tenant_id: t, recordingId });`,
    `enqueue({ tenantId: currentTenant(), recordingId });`,
    `this.emailQueue.add('welcome', { 'tenantId': id, userId });`,
    // a tenant in context: runAs' callback, at any depth
    `await runAs(tenantId, async () => { await queue.add('transcribe', { recordingId }); });`,
    `runAs(t, function () { if (x) { [1].forEach(() => boss.send('x', { a: 1 })); } });`,
    // payloads the rule cannot see are not judged
    `queue.add('transcribe', payload);`,
    `queue.add('transcribe', { ...base, recordingId });`,
    // not queue-like receivers, not enqueue methods
    `set.add({ id: 1 });`,
    `socket.send({ hello: 1 });`,
    `queue.remove({ id: 1 });`,
    { code: `jobs.schedule('x', { tenantKey: k });`, options: [{ methods: ['schedule'], tenantKeys: ['tenantKey'] }] },
    { code: `withTenant(t, () => queue.add('x', { a: 1 }));`, options: [{ scopeFunctions: ['withTenant'] }] },
  ],
  invalid: [
    {
      code: `queue.add('transcribe', { recordingId });`,
      errors: [{ messageId: 'jobWithoutTenant', line: 1, column: 25 }],
    },
    {
      code: `await boss.send('transcribe', { recordingId }, { retryLimit: 3 });`,
      errors: [{ messageId: 'jobWithoutTenant', column: 31 }],
    },
    { code: `enqueue({ recordingId });`, errors: [{ messageId: 'jobWithoutTenant' }] },
    { code: `await workerUtils.addJob('send_email', { to });`, errors: [{ messageId: 'jobWithoutTenant' }] },
    { code: `this.emailQueue.add('welcome', { userId });`, errors: [{ messageId: 'jobWithoutTenant' }] },
    // a callback of something else does not carry a tenant
    { code: `setTimeout(() => queue.add('x', { a: 1 }), 10);`, errors: [{ messageId: 'jobWithoutTenant' }] },
    // runAs' tenant argument is not its callback
    { code: `runAs(queue.add('x', { a: 1 }), () => 1);`, errors: [{ messageId: 'jobWithoutTenant' }] },
    {
      code: `jobs.schedule('x', { tenantId: k });`,
      options: [{ methods: ['schedule'], tenantKeys: ['tenantKey'] }],
      errors: [{ messageId: 'jobWithoutTenant', data: { key: 'tenantKey' } }],
    },
  ],
});
