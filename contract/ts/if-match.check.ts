/**
 * Compile-time proof that the contract makes If-Match required where the service answers
 * 428 without it: the first call must NOT compile. `tsc` fails on an unused
 * `@ts-expect-error`, so the check breaks the build the day If-Match turns optional again.
 */
import type { Api, Schemas } from "./client";

export async function changesNeedTheETag(
  api: Api,
  reportId: string,
  etag: string,
  draft: Schemas["ReportContentInput"],
): Promise<void> {
  // @ts-expect-error -- a PUT of a draft without If-Match is refused by the compiler.
  await api.PUT("/v1/reports/{report_id}/draft", { params: { path: { report_id: reportId } }, body: draft });
  // @ts-expect-error -- and so is a submission without it.
  await api.POST("/v1/reports/{report_id}/submission", { params: { path: { report_id: reportId } } });
  // The same calls with the ETag compile: what the two lines above lack is If-Match alone.
  await api.PUT("/v1/reports/{report_id}/draft", {
    params: { path: { report_id: reportId }, header: { "If-Match": etag } },
    body: draft,
  });
  await api.POST("/v1/reports/{report_id}/submission", {
    params: { path: { report_id: reportId }, header: { "If-Match": etag } },
  });
}
