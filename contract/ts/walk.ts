/**
 * The typed client run against a live service, as a front-end would use it:
 * `node generated/js/ts/walk.js` after `tsc --project contract --noEmit false --outDir generated/js`.
 * tests/contract/test_typescript_client.py prepares the data, runs it and checks what it prints.
 *
 * Environment: NSCL_URL, NSCL_CLIENT_ID, NSCL_CLIENT_SECRET (a unit's reporter),
 * NSCL_OBLIGATION (one of the unit's obligations), NSCL_PROGRAMME and NSCL_YEAR (a published
 * rollup), NSCL_JOB with NSCL_OPERATOR_ID and NSCL_OPERATOR_SECRET (a job, and who may
 * read it: a unit's reporter may not).
 */
import {
  connect,
  createReport,
  getRollup,
  issueToken,
  listOrgUnits,
  pollJob,
  ProblemError,
  submitReport,
  updateDraft,
} from "./client.js";

function setting(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") throw new Error(`${name} is not set`);
  return value;
}

const baseUrl = setting("NSCL_URL");
const token = await issueToken(baseUrl, setting("NSCL_CLIENT_ID"), setting("NSCL_CLIENT_SECRET"));
const api = connect(baseUrl, token.access_token);

const units = await listOrgUnits(api);
const opened = await createReport(api, setting("NSCL_OBLIGATION"), crypto.randomUUID());
const written = await updateDraft(api, opened, {
  indicator_values: [{ indicator: "training-courses", value: "6" }],
  experts: [{ full_name: "Nguyễn Văn An", level: "national", certified_on: "2024-05-02" }],
});
let stale: number | undefined;
try {
  await updateDraft(api, opened, {});
} catch (error) {
  if (!(error instanceof ProblemError)) throw error;
  stale = error.status;
}
const submitted = await submitReport(api, written);
const rollup = await getRollup(api, setting("NSCL_PROGRAMME"), Number(setting("NSCL_YEAR")));
const unchanged =
  rollup?.etag == null
    ? "no etag"
    : await getRollup(api, setting("NSCL_PROGRAMME"), Number(setting("NSCL_YEAR")), rollup.etag);
const operator = await issueToken(
  baseUrl,
  setting("NSCL_OPERATOR_ID"),
  setting("NSCL_OPERATOR_SECRET"),
);
const job = await pollJob(connect(baseUrl, operator.access_token), setting("NSCL_JOB"), {
  intervalMs: 100,
  timeoutMs: 500,
});

console.log(
  JSON.stringify({
    units: units.map((unit) => unit.key),
    report: opened.report.id,
    revisions: [opened.report.revision, written.report.revision],
    stale,
    status: submitted.status,
    rollup: rollup?.rollup.run_id,
    unchanged: unchanged === undefined ? "304" : unchanged,
    job: job.status,
  }),
);
