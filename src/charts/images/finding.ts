/**
 * One image a chart names, found by one of the discovery methods, before it
 * is checked as a reference: what it is, how it was found (for the `# from`
 * comment and the JSON), and whether the chart deploys it with the values
 * given or only when something is switched on.
 */
export interface ImageFinding {
  /** The reference as the chart gives it (checked later, when the list is collected). */
  image: string;
  /** How it was found: `annotation helm.sh/images`, `values: controller.image`, `images.lock`, `rendered Deployment/x …`. */
  how: string;
  /** Why it is not deployed with these values (`metrics.enabled is false`); absent when it is. */
  off?: string;
  /**
   * An image whose tag the values leave empty, so the chart's template fills
   * it in: the references the common templates make of it, in order of
   * likelihood (`repo:1.2.3` from appVersion, then `repo:v1.2.3`). `image`
   * holds the first until the registry says which exists.
   */
  candidates?: string[];
}

/** The most findings one chart (with its subcharts) may give: past it the chart is refused as hostile. */
export const MAX_FINDINGS_PER_CHART = 5000;
