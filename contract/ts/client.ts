/**
 * A small typed client of the nscl API, as a front-end team would write it: the types come
 * from openapi.json (openapi-typescript → generated/schema.ts), the calls from openapi-fetch.
 * It covers a unit's reporting round: token, organisation units, a report opened, its draft
 * written and submitted under If-Match, a published rollup read and a background job polled.
 */
import createClient, { type Client } from "openapi-fetch";

import type { components, paths } from "../generated/schema";

export type Schemas = components["schemas"];
/** JSON answers only: resources that export CSV or XLSX too answer JSON unless asked
 * otherwise, and their JSON is what a typed client reads. */
export type Json = "application/json" | "application/problem+json";
export type Api = Client<paths, Json>;
export type Problem = Schemas["Problem"];

/** Any answer that is not a success: the RFC 9457 problem the service sent. */
export class ProblemError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem | undefined,
  ) {
    super(problem ? `${status} ${problem.code}: ${problem.detail ?? problem.title}` : `${status}`);
  }
}

function expect<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data === undefined) {
    throw new ProblemError(result.response.status, result.error as Problem | undefined);
  }
  return result.data;
}

/** The ETag of an answer: what If-Match sends back to change the resource. */
function etagOf(response: Response): string {
  const etag = response.headers.get("ETag");
  if (etag === null) {
    throw new Error(`${response.url} answered without an ETag`);
  }
  return etag;
}

/** A client calling `baseUrl`, with a bearer token when there is one. */
export function connect(baseUrl: string, token?: string): Api {
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  return createClient<paths, Json>({ baseUrl, headers });
}

/** OAuth2 client credentials (RFC 6749 §4.4): a form body, answered with a bearer token. */
export async function issueToken(
  baseUrl: string,
  clientId: string,
  clientSecret: string,
  scope?: string,
): Promise<Schemas["TokenResponse"]> {
  const form: Schemas["IssueTokenForm"] = {
    grant_type: "client_credentials",
    client_id: clientId,
    client_secret: clientSecret,
    ...(scope === undefined ? {} : { scope }),
  };
  return expect(
    await connect(baseUrl).POST("/v1/oauth/token", {
      body: form,
      bodySerializer: (body) => {
        const params = new URLSearchParams();
        for (const [name, value] of Object.entries(body ?? {})) {
          if (typeof value === "string") params.set(name, value);
        }
        return params;
      },
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    }),
  );
}

/** Every organisation unit in force (as of a day when given), following the cursor. */
export async function listOrgUnits(api: Api, asOf?: string): Promise<Schemas["OrgUnitRead"][]> {
  const units: Schemas["OrgUnitRead"][] = [];
  let cursor: string | undefined;
  do {
    const page = expect(
      await api.GET("/v1/org-units", {
        params: {
          query: {
            limit: 100,
            ...(asOf === undefined ? {} : { as_of: asOf }),
            ...(cursor === undefined ? {} : { cursor }),
          },
        },
      }),
    );
    units.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined);
  return units;
}

/** A report with the ETag to change it by. */
export interface Held {
  report: Schemas["ReportRead"];
  etag: string;
}

/** Open the draft report of one of the unit's obligations. */
export async function createReport(
  api: Api,
  obligationId: string,
  idempotencyKey: string,
): Promise<Held> {
  const result = await api.POST("/v1/reports", {
    params: { header: { "Idempotency-Key": idempotencyKey } },
    body: { obligation_id: obligationId },
  });
  return { report: expect(result), etag: etagOf(result.response) };
}

/** Replace the draft; 412 when someone changed it since `held` was read. */
export async function updateDraft(
  api: Api,
  held: Held,
  draft: Schemas["ReportContentInput"],
): Promise<Held> {
  const result = await api.PUT("/v1/reports/{report_id}/draft", {
    params: { path: { report_id: held.report.id }, header: { "If-Match": held.etag } },
    body: draft,
  });
  return { report: expect(result), etag: etagOf(result.response) };
}

/** Submit the draft as read, for review. */
export async function submitReport(api: Api, held: Held): Promise<Schemas["ReportRead"]> {
  return expect(
    await api.POST("/v1/reports/{report_id}/submission", {
      params: { path: { report_id: held.report.id }, header: { "If-Match": held.etag } },
    }),
  );
}

/** The published rollup of a year, or `undefined` while it has not changed since `etag`. */
export async function getRollup(
  api: Api,
  programme: string,
  year: number,
  etag?: string,
): Promise<{ rollup: Schemas["RollupRead"]; etag: string | null } | undefined> {
  const result = await api.GET("/v1/rollups/{programme}/{year}", {
    params: {
      path: { programme, year },
      header: etag === undefined ? {} : { "If-None-Match": etag },
    },
  });
  if (result.response.status === 304) return undefined;
  return { rollup: expect(result), etag: result.response.headers.get("ETag") };
}

const FINISHED: ReadonlySet<Schemas["JobRead"]["status"]> = new Set([
  "succeeded",
  "failed",
  "cancelled",
]);

/** Poll a job until it has finished (or `timeoutMs` has passed). */
export async function pollJob(
  api: Api,
  jobId: string,
  { intervalMs = 500, timeoutMs = 60_000 }: { intervalMs?: number; timeoutMs?: number } = {},
): Promise<Schemas["JobRead"]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = expect(await api.GET("/v1/jobs/{job_id}", { params: { path: { job_id: jobId } } }));
    if (FINISHED.has(job.status) || Date.now() >= deadline) return job;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
