// Package controllers holds kfn's reconcilers:
//
//   - ExecutionReconciler runs each Execution as one Job, reads the result
//     the runner (internal/runner) reports through the pod, records it in
//     the Execution's status and deletes the Job and the request's Secrets;
//   - FunctionReconciler keeps a Function's inline code in a Secret, reports
//     in its Ready condition whether it can run, and prunes its history;
//   - ScheduleReconciler creates an Execution for each tick of a Function's
//     cron schedule;
//   - EventReconciler turns changes of Functions, Executions and chosen
//     Kubernetes resources into events, and those a Function subscribes to
//     into Executions.
//
// What a function pod sees (environment, paths, limits) is defined in
// internal/contract, shared with the runner.
package controllers
