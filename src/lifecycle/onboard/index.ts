export {
  TenantOnboarding,
  onboardTenant,
  type TenantOnboardingOptions,
  type OnboardResult,
  type OnboardContext,
  type OnboardStepEvent,
} from './tenant-onboarding.js';
export { onboardInputSchema, type OnboardInput } from './onboard-input.js';
export { ONBOARD_STEPS, type OnboardStep, type OnboardingRecord } from './onboarding-record.js';
export { OnboardingError, type OnboardingErrorCode } from './onboarding-error.js';
export {
  inviteOwner,
  type InvitationDelivery,
  type OwnerInvitation,
  type OwnerInvitationOptions,
} from './invite-owner.js';
