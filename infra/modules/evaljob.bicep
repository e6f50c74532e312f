// Continuous evaluation: a Container Apps Job that runs `python -m eval scheduled` (the Slipway image's
// own harness) against the deployed app on a cron schedule, logs each run to MLflow when a tracking URI
// is given, and exits 1 when a --fail-under gate is missed, which fails the execution; an Azure Monitor
// alert fires on any failed execution (metric `Executions`, dimension state = Failed).
param name string
param location string
param tags object = {}
param environmentId string
param identityId string
param registryServer string
param image string
param keyVaultUri string
@description('The deployed Slipway the job evaluates (https://...).')
param appUrl string
@description('When it runs (cron, UTC). Default: every night at 03:00.')
param cronExpression string = '0 3 * * *'
@description('The gate (python -m eval --fail-under), e.g. meteor=0.2,judge=3.')
param failUnder string = 'meteor=0.15'
@description('Cases to run from the image\'s packaged sample set (empty: all 60).')
param limit string = ''
@description('An MLflow tracking server every run is logged to (empty: not logged).')
param mlflowTrackingUri string = ''
@description('Who is e-mailed when an execution fails (empty: the alert shows in Azure Monitor only).')
param alertEmail string = ''

// The job's key for the app: a Key Vault secret of its own (one of the app's SLIPWAY_API_KEYS).
var plainEnv = concat(
  [
    {
      name: 'SLIPWAY_URL'
      value: appUrl
    }
    {
      name: 'EVAL_FAIL_UNDER'
      value: failUnder
    }
    {
      name: 'EVAL_OUT'
      value: '/tmp/eval-run'
    }
  ],
  empty(limit) ? [] : [
    {
      name: 'EVAL_LIMIT'
      value: limit
    }
  ],
  empty(mlflowTrackingUri) ? [] : [
    {
      name: 'MLFLOW_TRACKING_URI'
      value: mlflowTrackingUri
    }
  ]
)

resource job 'Microsoft.App/jobs@2024-03-01' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    environmentId: environmentId
    configuration: {
      triggerType: 'Schedule'
      scheduleTriggerConfig: {
        cronExpression: cronExpression
        parallelism: 1
        replicaCompletionCount: 1
      }
      replicaTimeout: 3600
      replicaRetryLimit: 0
      registries: [
        {
          server: registryServer
          identity: identityId
        }
      ]
      secrets: [
        {
          name: 'eval-api-key'
          keyVaultUrl: '${keyVaultUri}secrets/eval-api-key'
          identity: identityId
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'continuous-eval'
          image: image
          command: [
            'python'
            '-m'
            'eval'
            'scheduled'
          ]
          resources: {
            cpu: json('1.0')
            memory: '2Gi'
          }
          env: concat(plainEnv, [
            {
              name: 'SLIPWAY_API_KEY'
              secretRef: 'eval-api-key'
            }
          ])
        }
      ]
    }
  }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: 'ag-${name}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'slipwayeval'
    enabled: true
    emailReceivers: [
      {
        name: 'evaluators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource failedRun 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-${name}-failed'
  location: 'global'
  tags: tags
  properties: {
    description: 'A continuous evaluation run failed: a quality gate was missed or the app did not answer.'
    severity: 2
    enabled: true
    scopes: [
      job.id
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'failed-executions'
          criterionType: 'StaticThresholdCriterion'
          metricNamespace: 'Microsoft.App/jobs'
          metricName: 'Executions'
          dimensions: [
            {
              name: 'state'
              operator: 'Include'
              values: [
                'Failed'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    actions: empty(alertEmail) ? [] : [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

output jobName string = job.name
output alertName string = failedRun.name
