//! The resources the SAM transform generates that a SAM template may name (`!Ref
//! ServerlessHttpApi`, `!GetAtt NotesFunctionRole.Arn`, `!Ref NotesFunction.Alias`), with the
//! SAM resources they come from. The engine creates them; the resolver only needs to know
//! that the names exist and which resources they wait on. Names follow the SAM developer
//! guide's "Generated CloudFormation resources" pages; ids that SAM suffixes with a hash
//! (versions, deployments) are reachable only through their referenceable properties
//! (`F.Version`, `Api.Deployment`).

use indexmap::IndexMap;

use crate::node::Node;

/// A name the SAM transform makes referable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Implicit {
    pub logical_id: String,
    /// The CloudFormation type SAM generates for it.
    pub resource_type: String,
    /// The template's resources it comes from (the SAM resource it belongs to, or every
    /// function whose events make an implicit API).
    pub owners: Vec<String>,
}

/// The implicit names of the SAM resources of `resources` (the template's `Resources`).
pub fn implicit_resources(
    resources: &IndexMap<String, (crate::Pos, Node)>,
) -> IndexMap<String, Implicit> {
    let mut out: IndexMap<String, Implicit> = IndexMap::new();
    let mut add = |id: String, ty: &str, owner: &str| {
        if resources.contains_key(&id) {
            return; // a resource the template declares itself wins
        }
        let entry = out.entry(id.clone()).or_insert_with(|| Implicit {
            logical_id: id,
            resource_type: ty.to_string(),
            owners: Vec::new(),
        });
        if !entry.owners.iter().any(|o| o == owner) {
            entry.owners.push(owner.to_string());
        }
    };
    for (id, (_, r)) in resources {
        let ty = r.get("Type").and_then(Node::as_str).unwrap_or_default();
        let props = r.get("Properties");
        let prop = |k: &str| props.and_then(|p| p.get(k));
        match ty {
            "AWS::Serverless::Function" => {
                if prop("Role").is_none() {
                    add(format!("{id}Role"), "AWS::IAM::Role", id);
                }
                if let Some(alias) = prop("AutoPublishAlias") {
                    add(format!("{id}.Alias"), "AWS::Lambda::Alias", id);
                    add(format!("{id}.Version"), "AWS::Lambda::Version", id);
                    if let Some(name) = alias.as_str() {
                        add(format!("{id}Alias{name}"), "AWS::Lambda::Alias", id);
                    }
                }
                if prop("FunctionUrlConfig").is_some() {
                    add(format!("{id}Url"), "AWS::Lambda::Url", id);
                }
                let events = prop("Events").and_then(Node::as_map).into_iter().flatten();
                for (event, (_, e)) in events {
                    let ety = e.get("Type").and_then(Node::as_str).unwrap_or_default();
                    let eprop = |k: &str| e.get("Properties").and_then(|p| p.get(k));
                    match ety {
                        "Api" if eprop("RestApiId").is_none() => {
                            add("ServerlessRestApi".into(), "AWS::ApiGateway::RestApi", id);
                            add(
                                "ServerlessRestApi.Stage".into(),
                                "AWS::ApiGateway::Stage",
                                id,
                            );
                            add(
                                "ServerlessRestApi.Deployment".into(),
                                "AWS::ApiGateway::Deployment",
                                id,
                            );
                            add(
                                "ServerlessRestApiProdStage".into(),
                                "AWS::ApiGateway::Stage",
                                id,
                            );
                        }
                        "HttpApi" if eprop("ApiId").is_none() => {
                            add("ServerlessHttpApi".into(), "AWS::ApiGatewayV2::Api", id);
                            add(
                                "ServerlessHttpApi.Stage".into(),
                                "AWS::ApiGatewayV2::Stage",
                                id,
                            );
                            add(
                                "ServerlessHttpApiApiGatewayDefaultStage".into(),
                                "AWS::ApiGatewayV2::Stage",
                                id,
                            );
                        }
                        "Schedule" | "ScheduleV2" => {
                            let ty = if ety == "Schedule" {
                                "AWS::Events::Rule"
                            } else {
                                "AWS::Scheduler::Schedule"
                            };
                            add(format!("{id}{event}"), ty, id);
                        }
                        _ => {}
                    }
                }
            }
            "AWS::Serverless::HttpApi" => {
                add(format!("{id}.Stage"), "AWS::ApiGatewayV2::Stage", id);
                match prop("StageName").and_then(Node::scalar_text) {
                    Some(stage) => add(format!("{id}{stage}Stage"), "AWS::ApiGatewayV2::Stage", id),
                    None => add(
                        format!("{id}ApiGatewayDefaultStage"),
                        "AWS::ApiGatewayV2::Stage",
                        id,
                    ),
                }
            }
            "AWS::Serverless::Api" => {
                add(format!("{id}.Stage"), "AWS::ApiGateway::Stage", id);
                add(
                    format!("{id}.Deployment"),
                    "AWS::ApiGateway::Deployment",
                    id,
                );
                if let Some(stage) = prop("StageName").and_then(Node::scalar_text) {
                    add(format!("{id}{stage}Stage"), "AWS::ApiGateway::Stage", id);
                }
            }
            _ => {}
        }
    }

    out
}
